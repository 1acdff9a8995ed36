/* Files the binary serves as they are in the repository, embedded at build
 * time (C23 #embed), so the binary carries them and they exist once. */
#ifndef STREAMGATE_ASSETS_H
#define STREAMGATE_ASSETS_H

#include <stddef.h>

/* The JavaScript SDK (sdk/js/streamgate.js), served at GET /sdk/streamgate.js
 * by the gateway and by the portal (its test console uses it). */
const unsigned char *streamgate_asset_sdk_js(size_t *length);

/* The complete, commented example configuration (docs/streamgate.example.jsonc)
 * that `streamgate config-example` prints. */
const unsigned char *streamgate_asset_config_example(size_t *length);

/* A file the portal serves by name: its web UI (Sources/Portal/UI:
 * "index.html", "style.css" and the ES modules, "app.js" first) and its
 * REST API's OpenAPI document
 * ("openapi.json", docs/portal-openapi.json), or NULL. */
const unsigned char *streamgate_asset_portal(const char *name, size_t *length);

#endif
