#ifndef JETBACKUP_COPENSSL_SHIM_H
#define JETBACKUP_COPENSSL_SHIM_H
#include <openssl/evp.h>
#endif
