#ifndef JETBACKUP_CURL_API_H
#define JETBACKUP_CURL_API_H
#include <curl/curl.h>

/* libcurl, loaded when first needed (dlopen of libcurl.so.4, or of what the environment
   variable JETBACKUP_LIBCURL names), not linked: only S3
   repositories use it, and linking it made every command load its 30 libraries at start.
   jb_curl_load returns NULL once libcurl is loaded, else why it could not be; the other
   functions may be called only after it returned NULL. curl_easy_setopt and
   curl_easy_getinfo are variadic, which Swift cannot call: one typed wrapper per argument
   kind. */
const char *jb_curl_load(void);
CURLcode jb_curl_global_init(long flags);
CURL *jb_curl_easy_init(void);
void jb_curl_easy_cleanup(CURL *c);
CURLcode jb_curl_easy_perform(CURL *c);
const char *jb_curl_easy_strerror(CURLcode code);
struct curl_slist *jb_curl_slist_append(struct curl_slist *list, const char *line);
void jb_curl_slist_free_all(struct curl_slist *list);
CURLcode jb_curl_set_long(CURL *c, CURLoption o, long v);
CURLcode jb_curl_set_off(CURL *c, CURLoption o, curl_off_t v);
CURLcode jb_curl_set_ptr(CURL *c, CURLoption o, const void *v);
CURLcode jb_curl_set_string(CURL *c, CURLoption o, const char *v);
CURLcode jb_curl_set_slist(CURL *c, CURLoption o, struct curl_slist *v);
typedef size_t (*jb_curl_data_cb)(char *, size_t, size_t, void *);
CURLcode jb_curl_set_cb(CURL *c, CURLoption o, jb_curl_data_cb v);
CURLcode jb_curl_get_long(CURL *c, CURLINFO i, long *v);
#endif
