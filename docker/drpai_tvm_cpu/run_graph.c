/* What the sample app's MeraDrpRuntimeWrapper does on the board, as a small program to run under
 * qemu-aarch64: load deploy.so, create the graph executor from deploy.json, load deploy.params, set
 * the input, run, and write every output. It reaches the TVM runtime only through its stable C API
 * (c_runtime_api.h; the few types it needs are declared below), found with dlopen, so one loader
 * serves any TVM graph-executor runtime: the vendor's V2MA libtvm_runtime.so or the one posepipe
 * obtains.
 *
 * usage: run_graph RUNTIME.so DIR INPUT_NAME INPUT.f32 OUT_PREFIX DIM...
 * writes OUT_PREFIX<i>.f32 per output and prints "output <i> <dims...>" lines.
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { int32_t device_type; int32_t device_id; } Device;               /* DLDevice */
typedef struct { uint8_t code; uint8_t bits; uint16_t lanes; } DataType;          /* DLDataType */
typedef struct {                                                                   /* DLTensor */
  void *data; Device device; int32_t ndim; DataType dtype;
  int64_t *shape; int64_t *strides; uint64_t byte_offset;
} Tensor;
typedef union { int64_t v_int64; double v_float64; void *v_handle; const char *v_str; } Value;
typedef struct { const char *data; size_t size; } Bytes;                           /* TVMByteArray */

enum { INT = 0, TENSOR = 7, MODULE = 9, STR = 11, BYTES = 12, NDARRAY = 13, CPU = 1 };

static int (*mod_load)(const char *, const char *, void **);
static int (*mod_get)(void *, const char *, int, void **);
static int (*func_global)(const char *, void **);
static int (*func_call)(void *, Value *, int *, int, Value *, int *);
static int (*array_alloc)(const int64_t *, int, int, int, int, int, int, Tensor **);
static int (*copy_from)(Tensor *, void *, size_t);
static int (*copy_to)(Tensor *, void *, size_t);
static const char *(*last_error)(void);

static void die(const char *what) {
  fprintf(stderr, "run_graph: %s: %s\n", what, last_error ? last_error() : dlerror());
  exit(1);
}

static void *symbol(void *lib, const char *name) {
  void *f = dlsym(lib, name);
  if (!f) die(name);
  return f;
}

static char *slurp(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f) { perror(path); exit(1); }
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *data = malloc((size_t)n + 1);
  if (fread(data, 1, (size_t)n, f) != (size_t)n) { perror(path); exit(1); }
  data[n] = 0;
  fclose(f);
  *size = (size_t)n;
  return data;
}

static void *get(void *module, const char *name) {
  void *f = NULL;
  if (mod_get(module, name, 0, &f) != 0 || !f) die(name);
  return f;
}

static void call(void *f, Value *args, int *codes, int n, Value *ret, int *ret_code, const char *what) {
  Value unused; int unused_code;
  if (func_call(f, args, codes, n, ret ? ret : &unused, ret_code ? ret_code : &unused_code) != 0) die(what);
}

int main(int argc, char **argv) {
  if (argc < 7) {
    fprintf(stderr, "usage: run_graph RUNTIME.so DIR INPUT_NAME INPUT.f32 OUT_PREFIX DIM...\n");
    return 2;
  }
  void *runtime = dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL);
  if (!runtime) die(argv[1]);
  mod_load = symbol(runtime, "TVMModLoadFromFile");
  mod_get = symbol(runtime, "TVMModGetFunction");
  func_global = symbol(runtime, "TVMFuncGetGlobal");
  func_call = symbol(runtime, "TVMFuncCall");
  array_alloc = symbol(runtime, "TVMArrayAlloc");
  copy_from = symbol(runtime, "TVMArrayCopyFromBytes");
  copy_to = symbol(runtime, "TVMArrayCopyToBytes");
  last_error = symbol(runtime, "TVMGetLastError");

  char path[4096];
  size_t size;
  void *lib = NULL;
  snprintf(path, sizeof path, "%s/deploy.so", argv[2]);
  if (mod_load(path, "so", &lib) != 0) die("loading deploy.so");
  snprintf(path, sizeof path, "%s/deploy.json", argv[2]);
  char *graph = slurp(path, &size);

  void *create = NULL;
  if (func_global("tvm.graph_executor.create", &create) != 0 || !create) die("tvm.graph_executor.create");
  Value args[4] = {{.v_str = graph}, {.v_handle = lib}, {.v_int64 = CPU}, {.v_int64 = 0}};
  int codes[4] = {STR, MODULE, INT, INT};
  Value ret; int ret_code;
  call(create, args, codes, 4, &ret, &ret_code, "creating the graph executor");
  void *executor = ret.v_handle;

  snprintf(path, sizeof path, "%s/deploy.params", argv[2]);
  Bytes params = {.data = slurp(path, &size)};
  params.size = size;
  Value p = {.v_handle = &params}; int p_code = BYTES;
  call(get(executor, "load_params"), &p, &p_code, 1, NULL, NULL, "load_params");

  int ndim = argc - 6;
  int64_t shape[8];
  size_t count = 1;
  for (int i = 0; i < ndim && i < 8; i++) { shape[i] = atoll(argv[6 + i]); count *= (size_t)shape[i]; }
  Tensor *input = NULL;
  if (array_alloc(shape, ndim, 2, 32, 1, CPU, 0, &input) != 0) die("allocating the input");
  char *pixels = slurp(argv[4], &size);
  if (size != count * 4) { fprintf(stderr, "run_graph: %s holds %zu bytes, not %zu\n", argv[4], size, count * 4); return 1; }
  if (copy_from(input, pixels, size) != 0) die("copying the input");
  Value in_args[2] = {{.v_str = argv[3]}, {.v_handle = input}};
  int in_codes[2] = {STR, TENSOR};
  call(get(executor, "set_input"), in_args, in_codes, 2, NULL, NULL, "set_input");
  call(get(executor, "run"), NULL, NULL, 0, NULL, NULL, "run");

  Value n; int n_code;
  call(get(executor, "get_num_outputs"), NULL, NULL, 0, &n, &n_code, "get_num_outputs");
  void *get_output = get(executor, "get_output");
  for (int64_t i = 0; i < n.v_int64; i++) {
    Value index = {.v_int64 = i}; int index_code = INT;
    Value out; int out_code;
    call(get_output, &index, &index_code, 1, &out, &out_code, "get_output");
    Tensor *t = out.v_handle;
    size_t elements = 1;
    printf("output %lld", (long long)i);
    for (int d = 0; d < t->ndim; d++) { elements *= (size_t)t->shape[d]; printf(" %lld", (long long)t->shape[d]); }
    printf("\n");
    size_t nbytes = elements * (size_t)((t->dtype.bits * t->dtype.lanes + 7) / 8);
    char *buffer = malloc(nbytes);
    if (copy_to(t, buffer, nbytes) != 0) die("copying an output");
    snprintf(path, sizeof path, "%s%lld.f32", argv[5], (long long)i);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buffer, 1, nbytes, f) != nbytes || fclose(f) != 0) { perror(path); return 1; }
  }
  return 0;
}
