/* Board state machine: see board.h. All times are millis() values; unsigned
 * subtraction keeps the watchdog right across the 49-day wrap. */
#include "board.h"

#include <string.h>

static const board_limits_t DEFAULT_LIMITS = {1000, 1500, 2000};

void board_init(board_t *b, uint16_t watchdog_ms) {
    memset(b, 0, sizeof(*b));
    b->limits[CH_STEERING] = DEFAULT_LIMITS;
    b->limits[CH_THROTTLE] = DEFAULT_LIMITS;
    b->watchdog_ms = watchdog_ms;
    b->applied_us[0] = DEFAULT_LIMITS.center_us;
    b->applied_us[1] = DEFAULT_LIMITS.center_us;
    b->mode = MODE_DISARMED;
    b->flags = FLAG_WATCHDOG | FLAG_RC_LOST;
}

void board_set_rc(board_t *b, uint8_t channel, uint16_t us, uint32_t now_ms) {
    if (channel > RC_MODE || us < PULSE_MIN_US || us > PULSE_MAX_US) return;
    b->rc_us[channel] = us;
    b->last_rc_ms = now_ms;
    b->have_rc = 1;
}

static uint16_t clamp(const board_t *b, uint8_t ch, uint16_t us) {
    const board_limits_t *l = &b->limits[ch];
    return us < l->min_us ? l->min_us : (us > l->max_us ? l->max_us : us);
}

void board_update(board_t *b, uint32_t now_ms) {
    uint8_t rc_ok = b->have_rc && (uint32_t)(now_ms - b->last_rc_ms) <= RC_TIMEOUT_MS;
    uint8_t watchdog = !b->have_command || (uint32_t)(now_ms - b->last_command_ms) > b->watchdog_ms;
    uint16_t flags = (watchdog ? FLAG_WATCHDOG : 0) | (rc_ok ? 0 : FLAG_RC_LOST) | (b->estop ? FLAG_ESTOP : 0);
    uint16_t s = b->limits[CH_STEERING].center_us, t = b->limits[CH_THROTTLE].center_us;
    if (rc_ok && b->rc_us[RC_MODE] > MANUAL_THRESHOLD_US) {
        b->mode = MODE_MANUAL;
        s = clamp(b, CH_STEERING, b->rc_us[CH_STEERING]);
        t = clamp(b, CH_THROTTLE, b->rc_us[CH_THROTTLE]);
    } else if (b->estop) {
        b->mode = MODE_ESTOP;
    } else if (!b->armed) {
        b->mode = MODE_DISARMED;
    } else if (watchdog) {
        b->mode = MODE_FAILSAFE;
    } else {
        b->mode = MODE_AUTO;
        s = clamp(b, CH_STEERING, b->command_us[0]);
        t = clamp(b, CH_THROTTLE, b->command_us[1]);
    }
    b->applied_us[0] = s;
    b->applied_us[1] = t;
    b->flags = flags;
}

static uint8_t ack(uint8_t *reply, uint8_t seq, uint8_t type, uint8_t status) {
    uint8_t p[2] = {type, status};
    return (uint8_t)proto_encode(reply, MSG_ACK, seq, p, 2);
}

static uint8_t pulse_ok(uint16_t us) { return us >= PULSE_MIN_US && us <= PULSE_MAX_US; }

uint8_t board_handle(board_t *b, const proto_frame_t *f, uint32_t now_ms, uint8_t *reply) {
    uint8_t p[PROTO_MAX_PAYLOAD];
    switch (f->type) {
    case MSG_COMMAND: {
        uint16_t s = proto_get_u16(f->payload), t = proto_get_u16(f->payload + 2);
        if (!pulse_ok(s) || !pulse_ok(t)) return ack(reply, f->seq, f->type, ACK_INVALID);
        b->command_us[0] = s;
        b->command_us[1] = t;
        b->have_command = 1;
        b->last_command_ms = now_ms;
        board_update(b, now_ms);
        proto_put_u16(p, b->applied_us[0]);
        proto_put_u16(p + 2, b->applied_us[1]);
        p[4] = b->mode;
        proto_put_u16(p + 5, b->flags);
        return (uint8_t)proto_encode(reply, MSG_COMMAND_ACK, f->seq, p, 7);
    }
    case MSG_HEARTBEAT:
        return (uint8_t)proto_encode(reply, MSG_HEARTBEAT_ACK, f->seq, NULL, 0);
    case MSG_ARM:
        if (f->payload[0] == 1 && b->estop) return ack(reply, f->seq, f->type, ACK_REFUSED);
        b->armed = f->payload[0] == 1;
        board_update(b, now_ms);
        return ack(reply, f->seq, f->type, ACK_OK);
    case MSG_ESTOP:
        b->estop = f->payload[0] == 1;
        if (b->estop) b->armed = 0;
        board_update(b, now_ms);
        return ack(reply, f->seq, f->type, ACK_OK);
    case MSG_CAL_GET: {
        uint8_t ch = f->payload[0];
        if (ch > CH_THROTTLE) return ack(reply, f->seq, f->type, ACK_INVALID);
        p[0] = ch;
        proto_put_u16(p + 1, b->limits[ch].min_us);
        proto_put_u16(p + 3, b->limits[ch].center_us);
        proto_put_u16(p + 5, b->limits[ch].max_us);
        return (uint8_t)proto_encode(reply, MSG_CAL_DATA, f->seq, p, 7);
    }
    case MSG_CAL_SET: {
        uint8_t ch = f->payload[0];
        board_limits_t l = {proto_get_u16(f->payload + 1), proto_get_u16(f->payload + 3), proto_get_u16(f->payload + 5)};
        if (ch > CH_THROTTLE || !pulse_ok(l.min_us) || !pulse_ok(l.max_us) || l.min_us > l.center_us ||
            l.center_us > l.max_us)
            return ack(reply, f->seq, f->type, ACK_INVALID);
        if (b->armed) return ack(reply, f->seq, f->type, ACK_REFUSED);
        b->limits[ch] = l;
        board_update(b, now_ms);
        return ack(reply, f->seq, f->type, ACK_OK);
    }
    case MSG_HELLO:
        p[0] = PROTO_VERSION;
        p[1] = FW_MAJOR;
        p[2] = FW_MINOR;
        p[3] = FW_PATCH;
        memset(p + 4, 0, 8);
        memcpy(p + 4, BOARD_ID, sizeof(BOARD_ID) - 1 < 8 ? sizeof(BOARD_ID) - 1 : 8);
        return (uint8_t)proto_encode(reply, MSG_VERSION, f->seq, p, 12);
    default:
        return 0; /* board->host types echoed back at us: ignore */
    }
}

uint8_t board_telemetry(const board_t *b, uint8_t seq, uint8_t *dst) {
    uint8_t p[18];
    proto_put_u16(p, b->applied_us[0]);
    proto_put_u16(p + 2, b->applied_us[1]);
    proto_put_u16(p + 4, b->rc_us[0]);
    proto_put_u16(p + 6, b->rc_us[1]);
    proto_put_u16(p + 8, b->rc_us[2]);
    p[10] = b->mode;
    p[11] = b->armed;
    proto_put_u16(p + 12, b->flags);
    proto_put_u16(p + 14, b->loop_time_us);
    proto_put_u16(p + 16, b->rx_errors);
    return (uint8_t)proto_encode(dst, MSG_TELEMETRY, seq, p, 18);
}

#define MPU_ACCEL_M_S2_PER_LSB (9.80665f / 16384.0f)        /* ±2 g */
#define MPU_GYRO_RAD_S_PER_LSB (3.14159265f / 180.0f / 131.0f) /* ±250 °/s */

static void put_f32(uint8_t *b, float v) { memcpy(b, &v, 4); } /* AVR and hosts: IEEE-754, little-endian */

uint8_t board_imu_frame(uint8_t seq, uint32_t t_us, const uint8_t mpu_regs[14], uint8_t *dst) {
    uint8_t p[28];
    p[0] = (uint8_t)t_us;
    p[1] = (uint8_t)(t_us >> 8);
    p[2] = (uint8_t)(t_us >> 16);
    p[3] = (uint8_t)(t_us >> 24);
    for (uint8_t i = 0; i < 3; i++) {
        int16_t a = (int16_t)((mpu_regs[2 * i] << 8) | mpu_regs[2 * i + 1]);
        int16_t g = (int16_t)((mpu_regs[8 + 2 * i] << 8) | mpu_regs[8 + 2 * i + 1]);
        put_f32(p + 4 + 4 * i, a * MPU_ACCEL_M_S2_PER_LSB);
        put_f32(p + 16 + 4 * i, g * MPU_GYRO_RAD_S_PER_LSB);
    }
    return (uint8_t)proto_encode(dst, MSG_IMU, seq, p, 28);
}
