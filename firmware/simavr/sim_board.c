/* Runs the compiled PWM-bridge sketch in simavr as a virtual Uno on a pty.
 *
 *   sim_board FIRMWARE.elf LINK_PATH [--imu]
 *
 * - ATmega328P at 16 MHz, paced to wall-clock time so millis() and the host's
 *   timeouts agree (the simulation never runs ahead of real time).
 * - UART0 <-> a pseudo-terminal; LINK_PATH is a symlink to its slave side, which
 *   the bridge opens like /dev/ttyUSB0. Bytes into the AVR are paced at 115200 baud
 *   and respect the UART's XON/XOFF, like a real wire.
 * - RC receiver: 50 Hz pulses on D2 (steering), D3 (throttle), D4 (mode switch).
 * - Reads the output compare registers of Timer1 (OC1A = D9 steering, OC1B = D10
 *   throttle) to report the PWM the pins carry.
 * - With --imu, a virtual MPU-6050 on the I2C bus (address 0x68), at rest (gravity on +z)
 *   until the imu command sets its readings.
 *
 * stdin commands (one per line):  rc <steer_us> <throttle_us> <mode_us>   (0 = no pulses)
 *                                 imu <ax> <ay> <az> <gx> <gy> <gz>  (m/s², rad/s; with --imu)
 *                                 unplug | replug | quit
 * stdout reports (one per line):  ready <pty>
 *                                 pwm <sim_us> <steer_us> <throttle_us> <enabled>   (on change)
 *                                 rxidle <sim_us>  (time of the last byte into the AVR, once the
 *                                                   UART input has been idle for 100 ms)
 *                                 lag <ms>  (when the host is too slow to keep real time)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <math.h>
#include <simavr/avr_ioport.h>
#include <simavr/avr_twi.h>
#include <simavr/avr_uart.h>
#include <simavr/sim_avr.h>
#include <simavr/sim_elf.h>
#include <simavr/sim_irq.h>

#define F_CPU 16000000UL
#define CYCLES_PER_US (F_CPU / 1000000UL)
#define UART_BYTE_CYCLES (F_CPU / 11520UL) /* 10 bits per byte at 115200 baud */
#define RC_PERIOD_US 20000
/* ATmega328P data-space addresses */
#define REG_TCCR1A 0x80
#define REG_OCR1AL 0x88
#define REG_OCR1BL 0x8A

static avr_t *avr;
static int master_fd = -1, slave_fd = -1;
static const char *link_path;
static int uart_xon = 1;
static uint8_t rx_buf[4096];
static size_t rx_len, rx_pos;
static avr_cycle_count_t next_rx_cycle, last_rx_cycle;
static int rx_idle_reported = 1;

typedef struct {
    int pin;
    volatile uint32_t width_us;
    avr_irq_t *irq;
} rc_channel_t;
static rc_channel_t rc[3] = {{2, 0, NULL}, {3, 0, NULL}, {4, 0, NULL}};

static void plug(void) {
    char name[128];
    if (openpty(&master_fd, &slave_fd, name, NULL, NULL) < 0) {
        perror("openpty");
        exit(1);
    }
    struct termios t;
    tcgetattr(slave_fd, &t);
    cfmakeraw(&t);
    tcsetattr(slave_fd, TCSANOW, &t);
    fcntl(master_fd, F_SETFL, fcntl(master_fd, F_GETFL) | O_NONBLOCK);
    unlink(link_path);
    if (symlink(name, link_path) < 0) {
        perror("symlink");
        exit(1);
    }
    printf("ready %s\n", name);
    fflush(stdout);
}

static void unplug(void) {
    if (master_fd >= 0) close(master_fd);
    if (slave_fd >= 0) close(slave_fd);
    master_fd = slave_fd = -1;
    unlink(link_path);
    rx_len = rx_pos = 0;
}

static void uart_out_hook(struct avr_irq_t *irq, uint32_t value, void *param) {
    (void)irq;
    (void)param;
    uint8_t b = (uint8_t)value;
    if (master_fd >= 0 && write(master_fd, &b, 1) < 0 && errno != EAGAIN && errno != EIO)
        perror("pty write");
}

static void uart_xon_hook(struct avr_irq_t *irq, uint32_t value, void *param) {
    (void)irq; (void)value; (void)param;
    uart_xon = 1;
}

static void uart_xoff_hook(struct avr_irq_t *irq, uint32_t value, void *param) {
    (void)irq; (void)value; (void)param;
    uart_xon = 0;
}

static avr_cycle_count_t rc_fall(avr_t *a, avr_cycle_count_t when, void *param) {
    (void)a; (void)when;
    avr_raise_irq(((rc_channel_t *)param)->irq, 0);
    return 0;
}

static avr_cycle_count_t rc_frame(avr_t *a, avr_cycle_count_t when, void *param) {
    (void)param;
    for (int ch = 0; ch < 3; ch++) {
        uint32_t w = rc[ch].width_us;
        if (!w) continue;
        avr_raise_irq(rc[ch].irq, 1);
        avr_cycle_timer_register(a, (avr_cycle_count_t)w * CYCLES_PER_US, rc_fall, &rc[ch]);
    }
    return when + (avr_cycle_count_t)RC_PERIOD_US * CYCLES_PER_US;
}

/* ---- virtual MPU-6050: a register file behind I2C address 0x68 ---- */
#define MPU_ADDR 0x68
static uint8_t mpu_regs[128];
static int mpu_present, mpu_selected, mpu_index;
static uint8_t mpu_reg;
static avr_irq_t *mpu_irq; /* [TWI_IRQ_INPUT] towards the AVR, [TWI_IRQ_OUTPUT] from it */

static void mpu_put16(uint8_t reg, double value) {
    long v = lround(value);
    v = v > 32767 ? 32767 : (v < -32768 ? -32768 : v);
    mpu_regs[reg] = (uint8_t)((uint16_t)v >> 8);
    mpu_regs[reg + 1] = (uint8_t)((uint16_t)v & 0xFF);
}

static void mpu_set(const double accel[3], const double gyro[3]) {
    for (int i = 0; i < 3; i++) {
        mpu_put16((uint8_t)(0x3B + 2 * i), accel[i] * 16384.0 / 9.80665);          /* ±2 g */
        mpu_put16((uint8_t)(0x43 + 2 * i), gyro[i] * 131.0 * 180.0 / 3.14159265358979); /* ±250 °/s */
    }
}

static void mpu_twi_hook(struct avr_irq_t *irq, uint32_t value, void *param) {
    (void)irq;
    (void)param;
    avr_twi_msg_irq_t v;
    v.u.v = value;
    if (v.u.twi.msg & TWI_COND_STOP) mpu_selected = 0;
    if (v.u.twi.msg & TWI_COND_START) {
        mpu_selected = 0;
        mpu_index = 0;
        if (mpu_present && (v.u.twi.addr >> 1) == MPU_ADDR) {
            mpu_selected = v.u.twi.addr;
            avr_raise_irq(mpu_irq + TWI_IRQ_INPUT, avr_twi_irq_msg(TWI_COND_ACK, mpu_selected, 1));
        }
    }
    if (!mpu_selected) return;
    if (v.u.twi.msg & TWI_COND_WRITE) { /* first byte: register pointer, then register writes */
        avr_raise_irq(mpu_irq + TWI_IRQ_INPUT, avr_twi_irq_msg(TWI_COND_ACK, mpu_selected, 1));
        if (mpu_index++ == 0) {
            mpu_reg = v.u.twi.data & 0x7F;
        } else {
            mpu_regs[mpu_reg] = v.u.twi.data;
            mpu_reg = (mpu_reg + 1) & 0x7F;
        }
    }
    if (v.u.twi.msg & TWI_COND_READ) { /* auto-increment, like the real part */
        avr_raise_irq(mpu_irq + TWI_IRQ_INPUT, avr_twi_irq_msg(TWI_COND_READ, mpu_selected, mpu_regs[mpu_reg]));
        mpu_reg = (mpu_reg + 1) & 0x7F;
    }
}

static void mpu_init(void) {
    static const char *names[2] = {"8>mpu6050.out", "32<mpu6050.in"};
    mpu_regs[0x75] = MPU_ADDR; /* WHO_AM_I */
    mpu_regs[0x6B] = 0x40;     /* PWR_MGMT_1: asleep until the firmware wakes it */
    mpu_irq = avr_alloc_irq(&avr->irq_pool, 0, 2, names);
    avr_irq_register_notify(mpu_irq + TWI_IRQ_OUTPUT, mpu_twi_hook, NULL);
    avr_connect_irq(mpu_irq + TWI_IRQ_INPUT, avr_io_getirq(avr, AVR_IOCTL_TWI_GETIRQ(0), TWI_IRQ_INPUT));
    avr_connect_irq(avr_io_getirq(avr, AVR_IOCTL_TWI_GETIRQ(0), TWI_IRQ_OUTPUT), mpu_irq + TWI_IRQ_OUTPUT);
}

static uint64_t wall_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000ULL;
}

static int handle_stdin(void) {
    static char line[256];
    static size_t n;
    char c;
    while (read(STDIN_FILENO, &c, 1) == 1) {
        if (c != '\n') {
            if (n < sizeof(line) - 1) line[n++] = c;
            continue;
        }
        line[n] = 0;
        n = 0;
        unsigned s, t, m;
        if (sscanf(line, "rc %u %u %u", &s, &t, &m) == 3) {
            rc[0].width_us = s;
            rc[1].width_us = t;
            rc[2].width_us = m;
        } else if (!strncmp(line, "imu ", 4)) {
            double a[3], g[3];
            if (sscanf(line + 4, "%lf %lf %lf %lf %lf %lf", &a[0], &a[1], &a[2], &g[0], &g[1], &g[2]) == 6) {
                mpu_set(a, g);
            } else {
                fprintf(stderr, "sim_board: imu needs 6 numbers\n");
            }
        } else if (!strcmp(line, "unplug")) {
            unplug();
        } else if (!strcmp(line, "replug")) {
            plug();
        } else if (!strcmp(line, "quit")) {
            return 0;
        } else {
            fprintf(stderr, "sim_board: unknown command '%s'\n", line);
        }
    }
    return 1;
}

static void poll_pty(void) {
    if (master_fd < 0 || rx_pos < rx_len) return;
    ssize_t k = read(master_fd, rx_buf, sizeof(rx_buf));
    if (k > 0) {
        rx_len = (size_t)k;
        rx_pos = 0;
    }
}

static void report_pwm(void) {
    static int last_s = -1, last_t = -1, last_en = -1;
    uint16_t ocr_a = (uint16_t)(avr->data[REG_OCR1AL] | (avr->data[REG_OCR1AL + 1] << 8));
    uint16_t ocr_b = (uint16_t)(avr->data[REG_OCR1BL] | (avr->data[REG_OCR1BL + 1] << 8));
    int en = (avr->data[REG_TCCR1A] & 0xA0) == 0xA0; /* COM1A1 | COM1B1: both pins driven */
    int s = ocr_a / 2, t = ocr_b / 2;
    if (s != last_s || t != last_t || en != last_en) {
        printf("pwm %llu %d %d %d\n", (unsigned long long)(avr->cycle / CYCLES_PER_US), s, t, en);
        fflush(stdout);
        last_s = s, last_t = t, last_en = en;
    }
}

int main(int argc, char **argv) {
    if (argc < 3 || argc > 4 || (argc == 4 && strcmp(argv[3], "--imu"))) {
        fprintf(stderr, "usage: %s FIRMWARE.elf LINK_PATH [--imu]\n", argv[0]);
        return 2;
    }
    mpu_present = argc == 4;
    link_path = argv[2];
    signal(SIGPIPE, SIG_IGN);
    elf_firmware_t fw;
    memset(&fw, 0, sizeof(fw));
    if (elf_read_firmware(argv[1], &fw) != 0) {
        fprintf(stderr, "sim_board: cannot read %s\n", argv[1]);
        return 1;
    }
    avr = avr_make_mcu_by_name("atmega328p");
    if (!avr) {
        fprintf(stderr, "sim_board: simavr has no atmega328p\n");
        return 1;
    }
    avr_init(avr);
    avr->frequency = F_CPU;
    avr_load_firmware(avr, &fw);
    avr->frequency = F_CPU;

    uint32_t flags = 0;
    avr_ioctl(avr, AVR_IOCTL_UART_GET_FLAGS('0'), &flags);
    flags &= ~(uint32_t)(AVR_UART_FLAG_STDIO | AVR_UART_FLAG_POLL_SLEEP); /* stdout is ours; we pace time */
    avr_ioctl(avr, AVR_IOCTL_UART_SET_FLAGS('0'), &flags);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUTPUT), uart_out_hook, NULL);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XON), uart_xon_hook, NULL);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XOFF), uart_xoff_hook, NULL);
    avr_irq_t *uart_in = avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_INPUT);
    for (int ch = 0; ch < 3; ch++) rc[ch].irq = avr_io_getirq(avr, AVR_IOCTL_IOPORT_GETIRQ('D'), rc[ch].pin);
    avr_cycle_timer_register(avr, (avr_cycle_count_t)RC_PERIOD_US * CYCLES_PER_US, rc_frame, NULL);
    mpu_init();
    const double rest_accel[3] = {0.0, 0.0, 9.80665}, rest_gyro[3] = {0.0, 0.0, 0.0};
    mpu_set(rest_accel, rest_gyro);

    fcntl(STDIN_FILENO, F_SETFL, fcntl(STDIN_FILENO, F_GETFL) | O_NONBLOCK);
    plug();
    const uint64_t t0 = wall_us();
    avr_cycle_count_t next_poll = 0, next_pace = 0;
    uint64_t last_lag_report = 0;
    for (;;) {
        int state = avr_run(avr);
        if (state == cpu_Done || state == cpu_Crashed) {
            fprintf(stderr, "sim_board: firmware stopped (state %d)\n", state);
            unplug();
            return 1;
        }
        if (avr->cycle >= next_rx_cycle && rx_pos < rx_len && uart_xon) {
            avr_raise_irq(uart_in, rx_buf[rx_pos++]);
            next_rx_cycle = avr->cycle + UART_BYTE_CYCLES;
            last_rx_cycle = avr->cycle;
            rx_idle_reported = 0;
        }
        if (avr->cycle < next_poll) continue;
        next_poll = avr->cycle + 100 * CYCLES_PER_US; /* every 100 µs of simulated time */
        poll_pty();
        report_pwm();
        if (avr->cycle < next_pace) continue;
        next_pace = avr->cycle + 1000 * CYCLES_PER_US; /* every 1 ms: stdin, pacing */
        if (!handle_stdin()) break;
        if (!rx_idle_reported && avr->cycle - last_rx_cycle > 100000ULL * CYCLES_PER_US) {
            /* lets a test measure the firmware watchdog in simulated time, immune to host stalls */
            printf("rxidle %llu\n", (unsigned long long)(last_rx_cycle / CYCLES_PER_US));
            fflush(stdout);
            rx_idle_reported = 1;
        }
        uint64_t sim = avr->cycle / CYCLES_PER_US, wall = wall_us() - t0;
        if (sim > wall + 500) {
            usleep((useconds_t)(sim - wall));
        } else if (wall > sim + 50000 && wall - last_lag_report > 1000000) {
            printf("lag %llu\n", (unsigned long long)((wall - sim) / 1000));
            fflush(stdout);
            last_lag_report = wall;
        }
    }
    unplug();
    return 0;
}
