#ifndef JETBACKUP_CZSTD_SHIM_H
#define JETBACKUP_CZSTD_SHIM_H
#include <zstd.h>
#endif
