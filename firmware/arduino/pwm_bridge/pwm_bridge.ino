/* PWM bridge firmware for an Arduino Uno/Nano (ATmega328P, 16 MHz).
 *
 * Outputs:  D9  (OC1A) steering servo, D10 (OC1B) throttle ESC; 50 Hz hardware PWM,
 *           Timer1 fast PWM with ICR1 as TOP, 0.5 µs resolution.
 * Inputs:   D2 RC steering, D3 RC throttle, D4 RC mode switch (pin-change interrupts).
 * IMU:      optional MPU-6050 on I2C (A4 SDA, A5 SCL, address 0x68), streamed at 50 Hz
 *           as IMU frames when it answers WHO_AM_I at boot.
 * Serial:   115200 8N1, frames per firmware/PROTOCOL.md.
 *
 * Safety: boots neutral and disarmed; neutral when no valid COMMAND arrives for
 * DEFAULT_WATCHDOG_MS; the RC mode switch (> 1700 µs) hands the outputs to the
 * receiver whatever the host says. A hung MCU would leave Timer1 driving the last
 * pulses forever, so the AVR hardware watchdog resets it after 120 ms without a
 * completed loop (pins float -> the ESC's own signal-loss failsafe -> reboot neutral).
 * The protocol and state machine live in
 * protocol.c / board.c so they are also built and tested on the host. */
#include <Arduino.h>
#include <Wire.h>
#include <avr/wdt.h>

#include "board.h"
#include "protocol.h"

static const uint32_t TELEMETRY_PERIOD_MS = 50;
static const uint8_t RC_FIRST_PIN = 2; /* D2..D4 = PD2..PD4 = PCINT18..20 */
static const uint32_t IMU_PERIOD_MS = 20;
static const uint8_t MPU_ADDR = 0x68;

static board_t board;
static proto_parser_t parser;
static uint8_t tx_seq;
static uint32_t last_telemetry_ms;
static uint16_t worst_loop_us;
static uint8_t imu_present;
static uint32_t last_imu_ms;

static volatile uint16_t rc_width_us[3];
static volatile uint32_t rc_rise_us[3];
static volatile uint8_t rc_fresh;
static volatile uint8_t rc_last_pins;

ISR(PCINT2_vect) {
    uint8_t pins = PIND;
    uint32_t now = micros();
    uint8_t changed = pins ^ rc_last_pins;
    rc_last_pins = pins;
    for (uint8_t ch = 0; ch < 3; ch++) {
        uint8_t mask = (uint8_t)(1 << (RC_FIRST_PIN + ch));
        if (!(changed & mask)) continue;
        if (pins & mask) {
            rc_rise_us[ch] = now;
        } else {
            rc_width_us[ch] = (uint16_t)(now - rc_rise_us[ch]);
            rc_fresh |= (uint8_t)(1 << ch);
        }
    }
}

static void write_outputs(void) {
    /* 2 timer ticks per µs (prescaler 8 at 16 MHz) */
    OCR1A = (uint16_t)(board.applied_us[CH_STEERING] * 2);
    OCR1B = (uint16_t)(board.applied_us[CH_THROTTLE] * 2);
}

static void setup_pwm(void) {
    pinMode(9, OUTPUT);
    pinMode(10, OUTPUT);
    TCCR1A = 0;
    TCCR1B = 0;
    ICR1 = 39999; /* 20 ms period */
    write_outputs();
    TCCR1A = _BV(COM1A1) | _BV(COM1B1) | _BV(WGM11);
    TCCR1B = _BV(WGM13) | _BV(WGM12) | _BV(CS11);
}

static void setup_rc(void) {
    for (uint8_t ch = 0; ch < 3; ch++) pinMode(RC_FIRST_PIN + ch, INPUT);
    rc_last_pins = PIND;
    PCMSK2 |= _BV(PCINT18) | _BV(PCINT19) | _BV(PCINT20);
    PCICR |= _BV(PCIE2);
}

static uint8_t mpu_write(uint8_t reg, uint8_t value) {
    Wire.beginTransmission(MPU_ADDR);
    Wire.write(reg);
    Wire.write(value);
    return Wire.endTransmission() == 0;
}

static uint8_t mpu_read(uint8_t reg, uint8_t *buf, uint8_t n) {
    Wire.beginTransmission(MPU_ADDR);
    Wire.write(reg);
    if (Wire.endTransmission(false) != 0) return 0;
    if (Wire.requestFrom(MPU_ADDR, n) != n) return 0;
    for (uint8_t i = 0; i < n; i++) buf[i] = (uint8_t)Wire.read();
    return 1;
}

static void setup_imu(void) {
    uint8_t who = 0;
    Wire.begin();
    Wire.setClock(400000);
    imu_present = mpu_read(0x75, &who, 1) && who == 0x68 /* WHO_AM_I */
                  && mpu_write(0x6B, 0x00)                 /* PWR_MGMT_1: wake up */
                  && mpu_write(0x1B, 0x00)                 /* GYRO_CONFIG: ±250 °/s */
                  && mpu_write(0x1C, 0x00);                /* ACCEL_CONFIG: ±2 g */
}

static void send_imu(uint8_t *buf) {
    uint8_t regs[14];
    if (!mpu_read(0x3B, regs, sizeof(regs))) return; /* a glitch: skip this sample */
    uint8_t n = board_imu_frame(++tx_seq, micros(), regs, buf);
    Serial.write(buf, n);
}

/* Clear a watchdog reset flag before anything else, or the WDT stays on at 15 ms and the
 * sketch reboots forever (datasheet 10.9.2; bootloaders without this fix do the same). */
void wdt_off_early(void) __attribute__((naked, used, section(".init3")));
void wdt_off_early(void) {
    MCUSR = 0;
    wdt_disable();
}

void setup() {
    board_init(&board, DEFAULT_WATCHDOG_MS); /* neutral, disarmed */
    setup_pwm();
    proto_parser_init(&parser);
    setup_rc();
    Serial.begin(115200);
    setup_imu();
    wdt_enable(WDTO_120MS);
}

static void read_rc(uint32_t now_ms) {
    uint16_t w[3];
    uint8_t fresh;
    noInterrupts();
    fresh = rc_fresh;
    rc_fresh = 0;
    for (uint8_t ch = 0; ch < 3; ch++) w[ch] = rc_width_us[ch];
    interrupts();
    for (uint8_t ch = 0; ch < 3; ch++)
        if (fresh & (1 << ch)) board_set_rc(&board, ch, w[ch], now_ms);
}

void loop() {
    wdt_reset();
    uint32_t t0 = micros();
    uint32_t now = millis();
    static proto_frame_t frame;
    static uint8_t reply[PROTO_MAX_FRAME];
    while (Serial.available() > 0) {
        proto_push(&parser, (uint8_t)Serial.read());
        while (proto_next(&parser, &frame)) {
#ifdef PWM_BRIDGE_TEST_HOOKS
            /* test build only (firmware/build/uno-test): HEARTBEAT seq 0xEE hangs the MCU, so a
             * test can prove the hardware watchdog resets it. Never in the shipped build. */
            if (frame.type == MSG_HEARTBEAT && frame.seq == 0xEE)
                for (;;) {
                }
#endif
            uint8_t n = board_handle(&board, &frame, millis(), reply);
            if (n) Serial.write(reply, n);
        }
    }
    board.rx_errors = proto_errors(&parser);
    read_rc(now);
    board_update(&board, millis());
    write_outputs();
    if ((uint32_t)(now - last_telemetry_ms) >= TELEMETRY_PERIOD_MS) {
        last_telemetry_ms = now;
        board.loop_time_us = worst_loop_us;
        worst_loop_us = 0;
        uint8_t n = board_telemetry(&board, ++tx_seq, reply);
        Serial.write(reply, n);
    }
    if (imu_present && (uint32_t)(now - last_imu_ms) >= IMU_PERIOD_MS) {
        last_imu_ms = now;
        send_imu(reply);
    }
    uint32_t dt = micros() - t0;
    if (dt > worst_loop_us) worst_loop_us = dt > 0xFFFF ? 0xFFFF : (uint16_t)dt;
}
