#ifndef CZOOKEEPER_SHIM_H
#define CZOOKEEPER_SHIM_H

// The threaded (mt) API is hidden unless THREADED is defined before the include.
#ifndef THREADED
#define THREADED
#endif
#include <zookeeper/zookeeper.h>

#endif
