// CRC32C, picked at run time. The hardware path runs three independent CRC streams
// over thirds of a block so the crc32 instruction's 3-cycle latency is hidden, then
// joins them with a "shift by N zero bytes" operator read from precomputed tables.
// Invariant: every path computes the same function (tested on all lengths/alignments).
#include "crc32c.h"
#include <string.h>
#include <pthread.h>

#define POLY 0x82f63b78u

static uint32_t table8[8][256];

static void build_portable_tables(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
        table8[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = table8[0][n];
        for (int k = 1; k < 8; k++) {
            c = table8[0][c & 0xff] ^ (c >> 8);
            table8[k][n] = c;
        }
    }
}

static inline uint64_t load64(const unsigned char *p) {
    uint64_t v; memcpy(&v, p, 8); return v;  // little-endian hosts only (x86_64, aarch64)
}

static uint32_t portable_raw(uint32_t crc, const unsigned char *p, size_t len) {
    while (len && ((uintptr_t)p & 7)) { crc = table8[0][(crc ^ *p++) & 0xff] ^ (crc >> 8); len--; }
    while (len >= 8) {
        uint64_t v = load64(p) ^ crc;
        crc = table8[7][v & 0xff] ^ table8[6][(v >> 8) & 0xff] ^ table8[5][(v >> 16) & 0xff] ^
              table8[4][(v >> 24) & 0xff] ^ table8[3][(v >> 32) & 0xff] ^ table8[2][(v >> 40) & 0xff] ^
              table8[1][(v >> 48) & 0xff] ^ table8[0][v >> 56];
        p += 8; len -= 8;
    }
    while (len--) crc = table8[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return crc;
}

enum { LONG = 8192, SHORT = 256 };
static uint32_t shift_long[4][256], shift_short[4][256];

static inline uint32_t shift(uint32_t t[4][256], uint32_t crc) {
    return t[0][crc & 0xff] ^ t[1][(crc >> 8) & 0xff] ^ t[2][(crc >> 16) & 0xff] ^ t[3][crc >> 24];
}

typedef uint32_t (*raw_fn)(uint32_t, const unsigned char *, size_t);

// Builds the table that appends `n` zero bytes to a raw CRC register. The operator is
// linear over GF(2), so only the 32 single-bit registers are run through the zeros (by
// `single`, one stream: the tables are not built yet); every table entry is the XOR of the
// images of its bits. 264 KiB of CRC at start-up: 165 us through the table code, a tenth
// of that through the crc32 instruction.
static void build_shift(uint32_t t[4][256], size_t n, raw_fn single) {
    static const unsigned char zeros[LONG];
    uint32_t basis[32];
    for (int i = 0; i < 32; i++) basis[i] = single(1u << i, zeros, n);
    for (int k = 0; k < 4; k++)
        for (uint32_t b = 0; b < 256; b++) {
            uint32_t v = 0;
            for (int j = 0; j < 8; j++) if (b & (1u << j)) v ^= basis[8 * k + j];
            t[k][b] = v;
        }
}

#if defined(__x86_64__)
#include <cpuid.h>
#include <nmmintrin.h>

__attribute__((target("sse4.2")))
static uint32_t sse42_raw(uint32_t crc, const unsigned char *p, size_t len) {
    while (len && ((uintptr_t)p & 7)) { crc = _mm_crc32_u8(crc, *p++); len--; }
    while (len >= 3 * LONG) {
        uint64_t c0 = crc, c1 = 0, c2 = 0;
        const unsigned char *end = p + LONG;
        do {
            c0 = _mm_crc32_u64(c0, load64(p));
            c1 = _mm_crc32_u64(c1, load64(p + LONG));
            c2 = _mm_crc32_u64(c2, load64(p + 2 * LONG));
            p += 8;
        } while (p < end);
        crc = shift(shift_long, (uint32_t)c0) ^ (uint32_t)c1;
        crc = shift(shift_long, crc) ^ (uint32_t)c2;
        p += 2 * LONG; len -= 3 * LONG;
    }
    while (len >= 3 * SHORT) {
        uint64_t c0 = crc, c1 = 0, c2 = 0;
        const unsigned char *end = p + SHORT;
        do {
            c0 = _mm_crc32_u64(c0, load64(p));
            c1 = _mm_crc32_u64(c1, load64(p + SHORT));
            c2 = _mm_crc32_u64(c2, load64(p + 2 * SHORT));
            p += 8;
        } while (p < end);
        crc = shift(shift_short, (uint32_t)c0) ^ (uint32_t)c1;
        crc = shift(shift_short, crc) ^ (uint32_t)c2;
        p += 2 * SHORT; len -= 3 * SHORT;
    }
    uint64_t c = crc;
    while (len >= 8) { c = _mm_crc32_u64(c, load64(p)); p += 8; len -= 8; }
    crc = (uint32_t)c;
    while (len--) crc = _mm_crc32_u8(crc, *p++);
    return crc;
}

// One stream, no tables: what the shift tables are built with.
__attribute__((target("sse4.2")))
static uint32_t sse42_single(uint32_t crc, const unsigned char *p, size_t len) {
    uint64_t c = crc;
    while (len >= 8) { c = _mm_crc32_u64(c, load64(p)); p += 8; len -= 8; }
    crc = (uint32_t)c;
    while (len--) crc = _mm_crc32_u8(crc, *p++);
    return crc;
}

static int have_hw(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    return (c & bit_SSE4_2) != 0;
}
#define HW_RAW sse42_raw
#define HW_SINGLE sse42_single
#define HW_NAME "sse4.2"

#elif defined(__aarch64__)
#include <sys/auxv.h>
#include <arm_acle.h>
#ifndef HWCAP_CRC32
#define HWCAP_CRC32 (1 << 7)
#endif
__attribute__((target("crc")))
static uint32_t armv8_raw(uint32_t crc, const unsigned char *p, size_t len) {
    while (len && ((uintptr_t)p & 7)) { crc = __crc32cb(crc, *p++); len--; }
    while (len >= 8) { crc = __crc32cd(crc, load64(p)); p += 8; len -= 8; }
    while (len--) crc = __crc32cb(crc, *p++);
    return crc;
}
static int have_hw(void) { return (getauxval(AT_HWCAP) & HWCAP_CRC32) != 0; }
#define HW_RAW armv8_raw
#define HW_SINGLE armv8_raw
#define HW_NAME "armv8"
#endif

static raw_fn chosen = portable_raw;
static const char *chosen_name = "table";
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init(void) {
    build_portable_tables();
    raw_fn single = portable_raw;
#ifdef HW_RAW
    if (have_hw()) { chosen = HW_RAW; chosen_name = HW_NAME; single = HW_SINGLE; }
#endif
    build_shift(shift_long, LONG, single);
    build_shift(shift_short, SHORT, single);
}

uint32_t jet_crc32c_extend(uint32_t crc, const void *data, size_t len) {
    pthread_once(&once, init);
    return ~chosen(~crc, (const unsigned char *)data, len);
}

uint32_t jet_crc32c_extend_portable(uint32_t crc, const void *data, size_t len) {
    pthread_once(&once, init);
    return ~portable_raw(~crc, (const unsigned char *)data, len);
}

const char *jet_crc32c_implementation(void) {
    pthread_once(&once, init);
    return chosen_name;
}
