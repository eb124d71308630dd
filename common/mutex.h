// Mutex, MutexLock and the Clang thread-safety annotations that let the compiler check which
// lock guards which member (`-Wthread-safety`; see docs/threads.md).
//
// Why a wrapper: libstdc++'s std::mutex carries no capability attributes, so Clang cannot reason
// about it. Mutex is a std::mutex with those attributes; MutexLock is the scoped lock, and it can
// be unlocked and relocked inside its scope (which is what a condition-variable wait does: use
// std::condition_variable_any with a MutexLock). SharedMutex is the same for std::shared_mutex,
// held with ReaderMutexLock (shared) or WriterMutexLock (exclusive). Under GCC the macros expand
// to nothing.
//
//   mutable Mutex mu_;
//   std::map<int, Room> rooms_ ATELIER_GUARDED_BY(mu_);
//   void add_locked(int id) ATELIER_REQUIRES(mu_);
#pragma once

#include <mutex>
#include <shared_mutex>

#if defined(__clang__)
#define ATELIER_THREAD_ANNOTATION_(x) __attribute__((x))
#else
#define ATELIER_THREAD_ANNOTATION_(x)
#endif

#define ATELIER_CAPABILITY(x) ATELIER_THREAD_ANNOTATION_(capability(x))
#define ATELIER_SCOPED_CAPABILITY ATELIER_THREAD_ANNOTATION_(scoped_lockable)
#define ATELIER_GUARDED_BY(x) ATELIER_THREAD_ANNOTATION_(guarded_by(x))
#define ATELIER_PT_GUARDED_BY(x) ATELIER_THREAD_ANNOTATION_(pt_guarded_by(x))
#define ATELIER_ACQUIRED_BEFORE(...) ATELIER_THREAD_ANNOTATION_(acquired_before(__VA_ARGS__))
#define ATELIER_ACQUIRED_AFTER(...) ATELIER_THREAD_ANNOTATION_(acquired_after(__VA_ARGS__))
#define ATELIER_REQUIRES(...) ATELIER_THREAD_ANNOTATION_(requires_capability(__VA_ARGS__))
#define ATELIER_REQUIRES_SHARED(...) \
  ATELIER_THREAD_ANNOTATION_(requires_shared_capability(__VA_ARGS__))
#define ATELIER_ACQUIRE(...) ATELIER_THREAD_ANNOTATION_(acquire_capability(__VA_ARGS__))
#define ATELIER_ACQUIRE_SHARED(...) \
  ATELIER_THREAD_ANNOTATION_(acquire_shared_capability(__VA_ARGS__))
#define ATELIER_RELEASE(...) ATELIER_THREAD_ANNOTATION_(release_capability(__VA_ARGS__))
#define ATELIER_RELEASE_SHARED(...) \
  ATELIER_THREAD_ANNOTATION_(release_shared_capability(__VA_ARGS__))
#define ATELIER_TRY_ACQUIRE(...) ATELIER_THREAD_ANNOTATION_(try_acquire_capability(__VA_ARGS__))
#define ATELIER_TRY_ACQUIRE_SHARED(...) \
  ATELIER_THREAD_ANNOTATION_(try_acquire_shared_capability(__VA_ARGS__))
#define ATELIER_EXCLUDES(...) ATELIER_THREAD_ANNOTATION_(locks_excluded(__VA_ARGS__))
#define ATELIER_ASSERT_HELD(x) ATELIER_THREAD_ANNOTATION_(assert_capability(x))
#define ATELIER_RETURN_CAPABILITY(x) ATELIER_THREAD_ANNOTATION_(lock_returned(x))
#define ATELIER_NO_THREAD_SAFETY_ANALYSIS ATELIER_THREAD_ANNOTATION_(no_thread_safety_analysis)

namespace atelier {

class ATELIER_CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() ATELIER_ACQUIRE() { mu_.lock(); }
  void unlock() ATELIER_RELEASE() { mu_.unlock(); }
  bool try_lock() ATELIER_TRY_ACQUIRE(true) { return mu_.try_lock(); }
  // Tells the analysis the caller holds the lock where it cannot see it (a callback run under
  // a lock taken by its caller).
  void assert_held() const ATELIER_ASSERT_HELD(this) {}

 private:
  std::mutex mu_;
};

// Holds `mu` for its scope. unlock()/lock() release and retake it inside the scope; a
// std::condition_variable_any waits on a MutexLock directly.
class ATELIER_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) ATELIER_ACQUIRE(mu) : mu_(mu) { mu_.lock(); }
  ~MutexLock() ATELIER_RELEASE() {
    if (held_) mu_.unlock();
  }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  void lock() ATELIER_ACQUIRE() {
    mu_.lock();
    held_ = true;
  }
  void unlock() ATELIER_RELEASE() {
    held_ = false;
    mu_.unlock();
  }

 private:
  Mutex& mu_;
  bool held_ = true;
};

// A std::shared_mutex the analysis can see: many readers, or one writer. Members it guards are
// read under either lock and written under the exclusive one only.
class ATELIER_CAPABILITY("mutex") SharedMutex {
 public:
  SharedMutex() = default;
  SharedMutex(const SharedMutex&) = delete;
  SharedMutex& operator=(const SharedMutex&) = delete;

  void lock() ATELIER_ACQUIRE() { mu_.lock(); }
  void unlock() ATELIER_RELEASE() { mu_.unlock(); }
  bool try_lock() ATELIER_TRY_ACQUIRE(true) { return mu_.try_lock(); }
  void lock_shared() ATELIER_ACQUIRE_SHARED() { mu_.lock_shared(); }
  void unlock_shared() ATELIER_RELEASE_SHARED() { mu_.unlock_shared(); }
  bool try_lock_shared() ATELIER_TRY_ACQUIRE_SHARED(true) { return mu_.try_lock_shared(); }

 private:
  std::shared_mutex mu_;
};

// Holds `mu` shared (as a reader) for its scope.
class ATELIER_SCOPED_CAPABILITY ReaderMutexLock {
 public:
  explicit ReaderMutexLock(SharedMutex& mu) ATELIER_ACQUIRE_SHARED(mu) : mu_(mu) {
    mu_.lock_shared();
  }
  ~ReaderMutexLock() ATELIER_RELEASE() { mu_.unlock_shared(); }
  ReaderMutexLock(const ReaderMutexLock&) = delete;
  ReaderMutexLock& operator=(const ReaderMutexLock&) = delete;

 private:
  SharedMutex& mu_;
};

// Holds `mu` exclusively (as the writer) for its scope.
class ATELIER_SCOPED_CAPABILITY WriterMutexLock {
 public:
  explicit WriterMutexLock(SharedMutex& mu) ATELIER_ACQUIRE(mu) : mu_(mu) { mu_.lock(); }
  ~WriterMutexLock() ATELIER_RELEASE() { mu_.unlock(); }
  WriterMutexLock(const WriterMutexLock&) = delete;
  WriterMutexLock& operator=(const WriterMutexLock&) = delete;

 private:
  SharedMutex& mu_;
};

}  // namespace atelier
