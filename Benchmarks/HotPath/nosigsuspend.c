/* Benchmarks only. Valgrind 3.19 crashes when libdispatch's main thread waits in sigsuspend while threads start
   (Swift's async main). For counting instructions only: wait in nanosleep instead. */
#include <signal.h>
#include <time.h>
int sigsuspend(const sigset_t *mask) {
    (void)mask;
    for (;;) { struct timespec t = {3600, 0}; nanosleep(&t, 0); }
}
