// leak(bytes, chunk): mallocs `bytes` in blocks of `chunk`, writes every block (so its pages
// are resident) and never frees them. Test-only: the native leak the doctor must name.
#include <node_api.h>
#include <stdlib.h>
#include <string.h>

static napi_value Leak(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  double bytes = 0, chunk = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_value_double(env, argv[0], &bytes) != napi_ok || napi_get_value_double(env, argv[1], &chunk) != napi_ok ||
      !(chunk >= 1) || !(bytes >= 0)) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "Expected (bytes, chunk) numbers for leak");
    return NULL;
  }
  double leaked = 0;
  while (leaked < bytes) {
    char* p = malloc((size_t)chunk);
    if (!p) break;
    memset(p, 0x5a, (size_t)chunk);
    leaked += chunk;
  }
  napi_value result;
  napi_create_double(env, leaked, &result);
  return result;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "leak", NAPI_AUTO_LENGTH, Leak, NULL, &fn);
  napi_set_named_property(env, exports, "leak", fn);
  return exports;
}
