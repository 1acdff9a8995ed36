/* The embedded files of streamgate_assets.h. The paths are relative to this
 * file: the repository's own copies, so a change to the SDK is a change to
 * what the gateway serves. */
#include "streamgate_assets.h"

static const unsigned char sdk_js[] = {
#embed "../../sdk/js/streamgate.js"
};

const unsigned char *streamgate_asset_sdk_js(size_t *length) {
    *length = sizeof(sdk_js);
    return sdk_js;
}
