/* Frame codec: see protocol.h. Resynchronizes by dropping one byte after any failure. */
#include "protocol.h"

#include <string.h>

uint16_t proto_crc16(const uint8_t *data, size_t len) {
    uint16_t crc = 0xFFFF;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)data[i] << 8;
        for (uint8_t b = 0; b < 8; b++)
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

int proto_payload_len(uint8_t type) {
    switch (type) {
    case MSG_COMMAND: return 4;
    case MSG_HEARTBEAT: return 0;
    case MSG_ARM: return 1;
    case MSG_ESTOP: return 1;
    case MSG_CAL_GET: return 1;
    case MSG_CAL_SET: return 7;
    case MSG_HELLO: return 1;
    case MSG_ACK: return 2;
    case MSG_COMMAND_ACK: return 7;
    case MSG_HEARTBEAT_ACK: return 0;
    case MSG_CAL_DATA: return 7;
    case MSG_VERSION: return 12;
    case MSG_TELEMETRY: return 18;
    case MSG_IMU: return 28;
    default: return -1;
    }
}

size_t proto_encode(uint8_t *dst, uint8_t type, uint8_t seq, const uint8_t *payload, uint8_t len) {
    if (proto_payload_len(type) != (int)len) return 0;
    dst[0] = PROTO_START;
    dst[1] = len;
    dst[2] = type;
    dst[3] = seq;
    if (len) memcpy(dst + PROTO_HEADER_LEN, payload, len);
    uint16_t crc = proto_crc16(dst + 1, (size_t)len + 3);
    dst[PROTO_HEADER_LEN + len] = (uint8_t)(crc >> 8);
    dst[PROTO_HEADER_LEN + len + 1] = (uint8_t)(crc & 0xFF);
    dst[PROTO_HEADER_LEN + len + 2] = PROTO_END;
    return (size_t)len + PROTO_OVERHEAD;
}

void proto_parser_init(proto_parser_t *p) { memset(p, 0, sizeof(*p)); }

static void drop(proto_parser_t *p, uint8_t k) {
    if (k >= p->n) {
        p->n = 0;
        return;
    }
    memmove(p->buf, p->buf + k, (size_t)(p->n - k));
    p->n = (uint8_t)(p->n - k);
}

void proto_push(proto_parser_t *p, uint8_t byte) {
    if (p->n >= sizeof(p->buf)) drop(p, 1); /* unreachable when proto_next runs after every push */
    p->buf[p->n++] = byte;
}

int proto_next(proto_parser_t *p, proto_frame_t *out) {
    for (;;) {
        uint8_t k = 0;
        while (k < p->n && p->buf[k] != PROTO_START) k++;
        if (k) {
            p->garbage_bytes += k;
            drop(p, k);
        }
        if (p->n < PROTO_HEADER_LEN) return 0;
        uint8_t len = p->buf[1];
        if (proto_payload_len(p->buf[2]) != (int)len) {
            p->bad_length++;
            drop(p, 1);
            continue;
        }
        uint8_t total = (uint8_t)(len + PROTO_OVERHEAD);
        if (p->n < total) return 0;
        if (p->buf[total - 1] != PROTO_END) {
            p->bad_end++;
            drop(p, 1);
            continue;
        }
        uint16_t crc = (uint16_t)((p->buf[total - 3] << 8) | p->buf[total - 2]);
        if (proto_crc16(p->buf + 1, (size_t)len + 3) != crc) {
            p->crc_errors++;
            drop(p, 1);
            continue;
        }
        out->len = len;
        out->type = p->buf[2];
        out->seq = p->buf[3];
        if (len) memcpy(out->payload, p->buf + PROTO_HEADER_LEN, len);
        p->frames++;
        drop(p, total);
        return 1;
    }
}

uint16_t proto_errors(const proto_parser_t *p) {
    return (uint16_t)(p->crc_errors + p->bad_length + p->bad_end);
}
