/* The embedded files of streamgate_assets.h. The paths are relative to this
 * file: the repository's own copies, so a change to the SDK or the portal's
 * UI is a change to what the binary serves. */
#include "streamgate_assets.h"

#include <string.h>

static const unsigned char sdk_js[] = {
#embed "../../sdk/js/streamgate.js"
};
static const unsigned char portal_index_html[] = {
#embed "../Portal/UI/index.html"
};
static const unsigned char portal_app_js[] = {
#embed "../Portal/UI/app.js"
};
static const unsigned char portal_style_css[] = {
#embed "../Portal/UI/style.css"
};
static const unsigned char portal_openapi_json[] = {
#embed "../../docs/portal-openapi.json"
};

const unsigned char *streamgate_asset_sdk_js(size_t *length) {
    *length = sizeof(sdk_js);
    return sdk_js;
}

const unsigned char *streamgate_asset_portal(const char *name, size_t *length) {
    static const struct { const char *name; const unsigned char *bytes; size_t length; } files[] = {
        {"index.html", portal_index_html, sizeof(portal_index_html)},
        {"app.js", portal_app_js, sizeof(portal_app_js)},
        {"style.css", portal_style_css, sizeof(portal_style_css)},
        {"openapi.json", portal_openapi_json, sizeof(portal_openapi_json)},
    };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        if (strcmp(files[i].name, name) == 0) {
            *length = files[i].length;
            return files[i].bytes;
        }
    }
    *length = 0;
    return NULL;
}
