/* Frame codec shared by the firmware and the host test builds (plain C99, no Arduino).
 *
 * Frame: 0xAA | len | type | seq | payload[len] | crc_hi | crc_lo | 0x55
 * crc = CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) over len, type, seq, payload.
 * Each type has one fixed payload length; see firmware/PROTOCOL.md and
 * edge_inference/serial_protocol.py (keep all three in step). */
#ifndef PWM_BRIDGE_PROTOCOL_H
#define PWM_BRIDGE_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PROTO_START 0xAA
#define PROTO_END 0x55
#define PROTO_VERSION 1
#define PROTO_HEADER_LEN 4
#define PROTO_OVERHEAD 7
#define PROTO_MAX_PAYLOAD 32
#define PROTO_MAX_FRAME (PROTO_MAX_PAYLOAD + PROTO_OVERHEAD)

enum proto_type {
    /* host -> board */
    MSG_COMMAND = 0x01,       /* u16 steering_us, u16 throttle_us */
    MSG_HEARTBEAT = 0x02,     /* (empty) */
    MSG_ARM = 0x03,           /* u8 1 arm / 0 disarm */
    MSG_ESTOP = 0x04,         /* u8 1 latch / 0 release */
    MSG_CAL_GET = 0x05,       /* u8 channel */
    MSG_CAL_SET = 0x06,       /* u8 channel, u16 min, u16 center, u16 max */
    MSG_HELLO = 0x07,         /* u8 host protocol version */
    /* board -> host */
    MSG_ACK = 0x80,           /* u8 acked type, u8 status */
    MSG_COMMAND_ACK = 0x81,   /* u16 steering_us, u16 throttle_us, u8 mode, u16 flags */
    MSG_HEARTBEAT_ACK = 0x82, /* (empty) */
    MSG_CAL_DATA = 0x85,      /* as CAL_SET */
    MSG_VERSION = 0x87,       /* u8 protocol, u8 major, u8 minor, u8 patch, char board[8] */
    MSG_TELEMETRY = 0x90,     /* see board_telemetry() */
    MSG_IMU = 0x91            /* u32 t_us, float ax, ay, az, gx, gy, gz */
};

typedef struct {
    uint8_t type;
    uint8_t seq;
    uint8_t len;
    uint8_t payload[PROTO_MAX_PAYLOAD];
} proto_frame_t;

typedef struct {
    uint8_t buf[PROTO_MAX_FRAME];
    uint8_t n;
    uint32_t frames;
    uint16_t crc_errors;
    uint16_t bad_length;
    uint16_t bad_end;
    uint32_t garbage_bytes;
} proto_parser_t;

uint16_t proto_crc16(const uint8_t *data, size_t len);
/* Fixed payload length of a type, or -1 for an unknown type. */
int proto_payload_len(uint8_t type);
/* Write a frame into dst (room for PROTO_MAX_FRAME); returns its size, 0 if len is wrong for type. */
size_t proto_encode(uint8_t *dst, uint8_t type, uint8_t seq, const uint8_t *payload, uint8_t len);

void proto_parser_init(proto_parser_t *p);
/* Append one received byte. */
void proto_push(proto_parser_t *p, uint8_t byte);
/* Take the next complete, valid frame out of the buffer: 1 and *out filled, or 0.
 * Call until it returns 0 after every proto_push. Corrupted frames are counted and skipped. */
int proto_next(proto_parser_t *p, proto_frame_t *out);
uint16_t proto_errors(const proto_parser_t *p);

/* little-endian helpers */
static inline uint16_t proto_get_u16(const uint8_t *b) { return (uint16_t)(b[0] | ((uint16_t)b[1] << 8)); }
static inline void proto_put_u16(uint8_t *b, uint16_t v) { b[0] = (uint8_t)(v & 0xFF); b[1] = (uint8_t)(v >> 8); }

#ifdef __cplusplus
}
#endif
#endif
