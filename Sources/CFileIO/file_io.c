#define _GNU_SOURCE
#include "file_io.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>

int jb_start_writeback(int fd, int64_t offset, int64_t length) {
#if defined(__linux__)
    return sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE) == 0 ? 0 : errno;
#else
    (void)fd; (void)offset; (void)length;
    return 0;
#endif
}

void jb_set_thread_name(const char *name) {
#if defined(__linux__)
    char cut[16];
    strncpy(cut, name, sizeof cut - 1);
    cut[sizeof cut - 1] = 0;
    pthread_setname_np(pthread_self(), cut);
#else
    (void)name;
#endif
}
