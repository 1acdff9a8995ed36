/* Files the gateway serves as they are in the repository, embedded at build
 * time (C23 #embed), so the binary carries them and they exist once. */
#ifndef STREAMGATE_ASSETS_H
#define STREAMGATE_ASSETS_H

#include <stddef.h>

/* The JavaScript SDK (sdk/js/streamgate.js), served at GET /sdk/streamgate.js. */
const unsigned char *streamgate_asset_sdk_js(size_t *length);

#endif
