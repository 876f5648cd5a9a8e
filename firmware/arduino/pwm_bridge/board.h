/* The board's state machine, free of Arduino I/O so it also builds on the host.
 * Mirrors edge_inference/board_emulator.py:BoardLogic.
 *
 * Priority of outputs: manual (RC switch) > e-stop > disarmed > watchdog > auto.
 * Boot state: disarmed, outputs at the channel centers (neutral). */
#ifndef PWM_BRIDGE_BOARD_H
#define PWM_BRIDGE_BOARD_H

#include <stdint.h>

#include "protocol.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FW_MAJOR 1
#define FW_MINOR 0
#define FW_PATCH 0
#define BOARD_ID "uno-pwm"

#define CH_STEERING 0
#define CH_THROTTLE 1
#define RC_MODE 2

#define MODE_DISARMED 0
#define MODE_AUTO 1
#define MODE_MANUAL 2
#define MODE_FAILSAFE 3
#define MODE_ESTOP 4

#define FLAG_WATCHDOG 1
#define FLAG_RC_LOST 2
#define FLAG_ESTOP 8

#define ACK_OK 0
#define ACK_INVALID 1
#define ACK_REFUSED 2

#define PULSE_MIN_US 800
#define PULSE_MAX_US 2200
#define DEFAULT_WATCHDOG_MS 250
#define RC_TIMEOUT_MS 100
#define MANUAL_THRESHOLD_US 1700

typedef struct {
    uint16_t min_us, center_us, max_us;
} board_limits_t;

typedef struct {
    board_limits_t limits[2];
    uint8_t armed, estop, have_command, have_rc;
    uint16_t command_us[2];
    uint32_t last_command_ms, last_rc_ms;
    uint16_t rc_us[3];          /* steering, throttle, mode switch; 0 = never seen */
    uint16_t applied_us[2];
    uint8_t mode;
    uint16_t flags;
    uint16_t watchdog_ms;
    uint16_t rx_errors;
    uint16_t loop_time_us;
} board_t;

void board_init(board_t *b, uint16_t watchdog_ms);
/* A valid receiver pulse (µs) on channel 0..2 measured at now_ms. */
void board_set_rc(board_t *b, uint8_t channel, uint16_t us, uint32_t now_ms);
/* Recompute mode, flags and applied pulses. */
void board_update(board_t *b, uint32_t now_ms);
/* Act on a valid frame; write the reply frame into reply (PROTO_MAX_FRAME); return its size (0: none). */
uint8_t board_handle(board_t *b, const proto_frame_t *f, uint32_t now_ms, uint8_t *reply);
/* Telemetry frame into dst; returns its size. */
uint8_t board_telemetry(const board_t *b, uint8_t seq, uint8_t *dst);
/* IMU frame from an MPU-6050 register dump (0x3B..0x48: accel xyz, temp, gyro xyz, big-endian
 * int16) at ±2 g / ±250 °/s full scale, converted to m/s² and rad/s; returns its size. */
uint8_t board_imu_frame(uint8_t seq, uint32_t t_us, const uint8_t mpu_regs[14], uint8_t *dst);

#ifdef __cplusplus
}
#endif
#endif
