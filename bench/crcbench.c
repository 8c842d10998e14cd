// CRC32C throughput of the project's own implementation (Sources/CCRC32C) on 1 MiB buffers.
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "crc32c.h"

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }

int main(int argc, char **argv) {
    size_t size = 1 << 20;
    int iters = argc > 1 ? atoi(argv[1]) : 4000;
    unsigned char *buf = aligned_alloc(64, size);
    for (size_t i = 0; i < size; i++) buf[i] = (unsigned char)(i * 2654435761u >> 13);
    volatile uint32_t sink = 0;
    for (int i = 0; i < 50; i++) sink ^= jet_crc32c_extend(0, buf, size);
    double t0 = now();
    for (int i = 0; i < iters; i++) sink ^= jet_crc32c_extend(0, buf, size);
    double t = now() - t0;
    double t1 = now();
    for (int i = 0; i < iters / 20 + 1; i++) sink ^= jet_crc32c_extend_portable(0, buf, size);
    double tp = now() - t1;
    printf("{\"impl\":\"%s\",\"gbps\":%.3f,\"table_gbps\":%.3f}\n", jet_crc32c_implementation(),
           (double)size * iters / t / 1e9, (double)size * (iters / 20 + 1) / tp / 1e9);
    return sink == 0x12345678 ? 1 : 0;
}
