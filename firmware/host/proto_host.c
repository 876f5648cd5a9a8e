/* Host build of the firmware's parser and state machine, for tests on this machine.
 *
 *   proto_host parse   < bytes   -> one line per accepted frame: "<type> <seq> <payload hex>",
 *                                   then "stats <frames> <crc> <bad_length> <bad_end> <garbage>"
 *   proto_host vectors < bytes   -> feed frames to board_handle() at 1 ms steps and print
 *                                   every reply frame in hex (shared test vectors with Python)
 *
 * It compiles exactly the protocol.c / board.c that the sketch links. */
#include <stdio.h>
#include <string.h>

#include "../arduino/pwm_bridge/board.h"
#include "../arduino/pwm_bridge/protocol.h"

static void hex(const uint8_t *b, size_t n) {
    for (size_t i = 0; i < n; i++) printf("%02x", b[i]);
}

int main(int argc, char **argv) {
    if (argc != 2 || (strcmp(argv[1], "parse") && strcmp(argv[1], "vectors"))) {
        fprintf(stderr, "usage: %s parse|vectors < bytes\n", argv[0]);
        return 2;
    }
    int vectors = !strcmp(argv[1], "vectors");
    proto_parser_t p;
    proto_frame_t f;
    board_t board;
    uint8_t reply[PROTO_MAX_FRAME];
    uint32_t now_ms = 0;
    proto_parser_init(&p);
    board_init(&board, DEFAULT_WATCHDOG_MS);
    static uint8_t buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), stdin)) > 0) {
        for (size_t i = 0; i < n; i++) {
            proto_push(&p, buf[i]);
            while (proto_next(&p, &f)) {
                if (vectors) {
                    now_ms += 1;
                    uint8_t k = board_handle(&board, &f, now_ms, reply);
                    hex(reply, k);
                    printf("\n");
                } else {
                    printf("%d %d ", f.type, f.seq);
                    hex(f.payload, f.len);
                    printf("\n");
                }
            }
        }
    }
    printf("stats %lu %u %u %u %lu\n", (unsigned long)p.frames, p.crc_errors, p.bad_length, p.bad_end,
           (unsigned long)p.garbage_bytes);
    return 0;
}
