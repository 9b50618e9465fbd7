// libcurl for Swift: curl_easy_setopt and curl_easy_getinfo are variadic, which Swift cannot call, so each option
// type gets a typed wrapper.
#ifndef INFMLLM_CCURL_SHIM_H
#define INFMLLM_CCURL_SHIM_H

#include <curl/curl.h>

static inline CURLcode infmllm_curl_set_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode infmllm_curl_set_string(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode infmllm_curl_set_pointer(CURL *handle, CURLoption option, void *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode infmllm_curl_set_offset(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}

typedef size_t (*infmllm_curl_write_callback)(char *data, size_t size, size_t count, void *context);

static inline CURLcode infmllm_curl_set_write(CURL *handle, infmllm_curl_write_callback callback, void *context) {
    CURLcode code = curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, callback);
    if (code != CURLE_OK) return code;
    return curl_easy_setopt(handle, CURLOPT_WRITEDATA, context);
}

static inline CURLcode infmllm_curl_set_header(CURL *handle, infmllm_curl_write_callback callback, void *context) {
    CURLcode code = curl_easy_setopt(handle, CURLOPT_HEADERFUNCTION, callback);
    if (code != CURLE_OK) return code;
    return curl_easy_setopt(handle, CURLOPT_HEADERDATA, context);
}

typedef curl_socket_t (*infmllm_curl_opensocket_callback)(void *context, curlsocktype purpose,
                                                          struct curl_sockaddr *address);

/// Routes every socket the transfer opens through `callback`, which sees the address about to be connected.
static inline CURLcode infmllm_curl_set_opensocket(CURL *handle, infmllm_curl_opensocket_callback callback,
                                                   void *context) {
    CURLcode code = curl_easy_setopt(handle, CURLOPT_OPENSOCKETFUNCTION, callback);
    if (code != CURLE_OK) return code;
    return curl_easy_setopt(handle, CURLOPT_OPENSOCKETDATA, context);
}

/// The socket libcurl would have opened for `address`.
static inline curl_socket_t infmllm_curl_open_socket(const struct curl_sockaddr *address) {
    return socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

/// The socket address (sockaddr_in or sockaddr_in6) inside `address`; libcurl keeps it in storage of
/// `addrlen` bytes.
static inline const void *infmllm_curl_socket_address(const struct curl_sockaddr *address) {
    return &address->addr;
}

static inline unsigned int infmllm_curl_socket_address_length(const struct curl_sockaddr *address) {
    return address->addrlen;
}

static inline curl_version_info_data *infmllm_curl_version(void) { return curl_version_info(CURLVERSION_NOW); }

static inline CURLcode infmllm_curl_get_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}

static inline CURLcode infmllm_curl_get_offset(CURL *handle, CURLINFO info, curl_off_t *value) {
    return curl_easy_getinfo(handle, info, value);
}

#endif
