// libcurl through dlopen (see curl_api.h). Invariant: after jb_curl_load returned NULL,
// every pointer below is set; it is loaded once (pthread_once) and never unloaded.
#include "curl_api.h"
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static struct {
    CURLcode (*global_init)(long);
    CURL *(*easy_init)(void);
    void (*easy_cleanup)(CURL *);
    CURLcode (*easy_perform)(CURL *);
    const char *(*easy_strerror)(CURLcode);
    struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
    void (*slist_free_all)(struct curl_slist *);
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
} api;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char failure[512];
static const char *failed = NULL;

static void load(void) {
    // JETBACKUP_LIBCURL names another libcurl (a path, or a name the loader searches for).
    const char *name = getenv("JETBACKUP_LIBCURL");
    if (!name || !*name) name = "libcurl.so.4";
    const char *libname = name;
    void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(failure, sizeof failure, "%s", dlerror());
        failed = failure;
        return;
    }
#define SYM(field, sym)                                                             \
    if (!(*(void **)&api.field = dlsym(h, sym))) {                                  \
        snprintf(failure, sizeof failure, "%s has no %s", libname, sym);           \
        failed = failure;                                                            \
        return;                                                                      \
    }
    SYM(global_init, "curl_global_init")
    SYM(easy_init, "curl_easy_init")
    SYM(easy_cleanup, "curl_easy_cleanup")
    SYM(easy_perform, "curl_easy_perform")
    SYM(easy_strerror, "curl_easy_strerror")
    SYM(slist_append, "curl_slist_append")
    SYM(slist_free_all, "curl_slist_free_all")
    SYM(easy_setopt, "curl_easy_setopt")
    SYM(easy_getinfo, "curl_easy_getinfo")
#undef SYM
}

const char *jb_curl_load(void) {
    pthread_once(&once, load);
    return failed;
}

CURLcode jb_curl_global_init(long flags) { return api.global_init(flags); }
CURL *jb_curl_easy_init(void) { return api.easy_init(); }
void jb_curl_easy_cleanup(CURL *c) { api.easy_cleanup(c); }
CURLcode jb_curl_easy_perform(CURL *c) { return api.easy_perform(c); }
const char *jb_curl_easy_strerror(CURLcode code) { return api.easy_strerror(code); }
struct curl_slist *jb_curl_slist_append(struct curl_slist *list, const char *line) { return api.slist_append(list, line); }
void jb_curl_slist_free_all(struct curl_slist *list) { api.slist_free_all(list); }
CURLcode jb_curl_set_long(CURL *c, CURLoption o, long v) { return api.easy_setopt(c, o, v); }
CURLcode jb_curl_set_off(CURL *c, CURLoption o, curl_off_t v) { return api.easy_setopt(c, o, v); }
CURLcode jb_curl_set_ptr(CURL *c, CURLoption o, const void *v) { return api.easy_setopt(c, o, v); }
CURLcode jb_curl_set_string(CURL *c, CURLoption o, const char *v) { return api.easy_setopt(c, o, v); }
CURLcode jb_curl_set_slist(CURL *c, CURLoption o, struct curl_slist *v) { return api.easy_setopt(c, o, v); }
CURLcode jb_curl_set_cb(CURL *c, CURLoption o, jb_curl_data_cb v) { return api.easy_setopt(c, o, v); }
CURLcode jb_curl_get_long(CURL *c, CURLINFO i, long *v) { return api.easy_getinfo(c, i, v); }
