/* Stands in for EdgeCortix's libmeradna-runtime (the MERA DNA accelerator's driver, which needs Xilinx
 * XRT): the MERA TVM runtime links it, but a CPU graph-executor module never calls it. Each symbol the
 * runtime imports from it fails loudly if something does. */
#include <stdio.h>
#include <stdlib.h>

static void unavailable(const char *what) {
  fprintf(stderr, "the MERA DNA accelerator is not available here (%s was called)\n", what);
  abort();
}

void _ZN4mera20GetMeradnaVersionStrB5cxx11Ev(void) { unavailable("mera::GetMeradnaVersionStr"); }
void _ZN4mera7execute14CreateExecutorERKSt6vectorIhSaIhEE(void) { unavailable("mera::execute::CreateExecutor"); }
void _ZN4mera7execute7ExecuteEPKNS0_8ExecutorERKNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEERSt6vectorIPvSaISD_EE(void) {
  unavailable("mera::execute::Execute");
}
void _ZNK4mera7execute15ExecutorMetrics8AsStringB5cxx11Ev(void) { unavailable("mera::execute::ExecutorMetrics::AsString"); }
