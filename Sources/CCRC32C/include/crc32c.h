#ifndef JETBACKUP_CRC32C_H
#define JETBACKUP_CRC32C_H
#include <stddef.h>
#include <stdint.h>

/// CRC32C (Castagnoli) of `len` bytes, continuing from `crc` (0 to start).
/// The implementation is chosen once, at first use: SSE4.2 with three interleaved
/// streams, ARMv8 CRC, or a slicing-by-8 table.
uint32_t jet_crc32c_extend(uint32_t crc, const void *data, size_t len);

/// The portable table implementation, always available; tests compare it with the hardware one.
uint32_t jet_crc32c_extend_portable(uint32_t crc, const void *data, size_t len);

/// Name of the implementation in use: "sse4.2", "armv8", or "table".
const char *jet_crc32c_implementation(void);

#endif
