#include "common/thread_name.h"

#include <pthread.h>

#include <string>

namespace atelier {

void set_current_thread_name(std::string_view name) {
  // The kernel's limit is 16 bytes with the terminating NUL; longer names fail with ERANGE.
  std::string cut(name.substr(0, 15));
  pthread_setname_np(pthread_self(), cut.c_str());
}

}  // namespace atelier
