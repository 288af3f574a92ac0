// The one place Warden includes the NATS C client (Debian: libnats-dev).
#include <nats/nats.h>
