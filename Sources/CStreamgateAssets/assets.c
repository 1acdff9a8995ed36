/* The embedded files of streamgate_assets.h. The paths are relative to this
 * file: the repository's own copies, so a change to the SDK or the portal's
 * UI is a change to what the binary serves. The UI's ES modules (the .js
 * files of Sources/Portal/UI) are one array and one table row each, like
 * the allow-list UIRoutes.files. */
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
static const unsigned char portal_console_connection_js[] = {
#embed "../Portal/UI/console-connection.js"
};
static const unsigned char portal_console_panels_js[] = {
#embed "../Portal/UI/console-panels.js"
};
static const unsigned char portal_dom_js[] = {
#embed "../Portal/UI/dom.js"
};
static const unsigned char portal_endpoint_params_js[] = {
#embed "../Portal/UI/endpoint-params.js"
};
static const unsigned char portal_format_js[] = {
#embed "../Portal/UI/format.js"
};
static const unsigned char portal_forms_js[] = {
#embed "../Portal/UI/forms.js"
};
static const unsigned char portal_gateway_settings_js[] = {
#embed "../Portal/UI/gateway-settings.js"
};
static const unsigned char portal_nav_js[] = {
#embed "../Portal/UI/nav.js"
};
static const unsigned char portal_rest_js[] = {
#embed "../Portal/UI/rest.js"
};
static const unsigned char portal_router_js[] = {
#embed "../Portal/UI/router.js"
};
static const unsigned char portal_snippet_text_js[] = {
#embed "../Portal/UI/snippet-text.js"
};
static const unsigned char portal_state_js[] = {
#embed "../Portal/UI/state.js"
};
static const unsigned char portal_token_mint_js[] = {
#embed "../Portal/UI/token-mint.js"
};
static const unsigned char portal_token_table_js[] = {
#embed "../Portal/UI/token-table.js"
};
static const unsigned char portal_topbar_js[] = {
#embed "../Portal/UI/topbar.js"
};
static const unsigned char portal_view_api_form_js[] = {
#embed "../Portal/UI/view-api-form.js"
};
static const unsigned char portal_view_api_list_js[] = {
#embed "../Portal/UI/view-api-list.js"
};
static const unsigned char portal_view_api_js[] = {
#embed "../Portal/UI/view-api.js"
};
static const unsigned char portal_view_console_js[] = {
#embed "../Portal/UI/view-console.js"
};
static const unsigned char portal_view_keys_js[] = {
#embed "../Portal/UI/view-keys.js"
};
static const unsigned char portal_view_login_js[] = {
#embed "../Portal/UI/view-login.js"
};
static const unsigned char portal_view_snippets_js[] = {
#embed "../Portal/UI/view-snippets.js"
};
static const unsigned char portal_view_tokens_js[] = {
#embed "../Portal/UI/view-tokens.js"
};
static const unsigned char portal_view_users_js[] = {
#embed "../Portal/UI/view-users.js"
};
static const unsigned char portal_widgets_js[] = {
#embed "../Portal/UI/widgets.js"
};
static const unsigned char portal_style_css[] = {
#embed "../Portal/UI/style.css"
};
static const unsigned char config_example[] = {
#embed "../../docs/streamgate.example.jsonc"
};
static const unsigned char portal_openapi_json[] = {
#embed "../../docs/portal-openapi.json"
};

const unsigned char *streamgate_asset_config_example(size_t *length) {
    *length = sizeof(config_example);
    return config_example;
}

const unsigned char *streamgate_asset_sdk_js(size_t *length) {
    *length = sizeof(sdk_js);
    return sdk_js;
}

const unsigned char *streamgate_asset_portal(const char *name, size_t *length) {
    static const struct { const char *name; const unsigned char *bytes; size_t length; } files[] = {
        {"index.html", portal_index_html, sizeof(portal_index_html)},
        {"app.js", portal_app_js, sizeof(portal_app_js)},
        {"console-connection.js", portal_console_connection_js, sizeof(portal_console_connection_js)},
        {"console-panels.js", portal_console_panels_js, sizeof(portal_console_panels_js)},
        {"dom.js", portal_dom_js, sizeof(portal_dom_js)},
        {"endpoint-params.js", portal_endpoint_params_js, sizeof(portal_endpoint_params_js)},
        {"format.js", portal_format_js, sizeof(portal_format_js)},
        {"forms.js", portal_forms_js, sizeof(portal_forms_js)},
        {"gateway-settings.js", portal_gateway_settings_js, sizeof(portal_gateway_settings_js)},
        {"nav.js", portal_nav_js, sizeof(portal_nav_js)},
        {"rest.js", portal_rest_js, sizeof(portal_rest_js)},
        {"router.js", portal_router_js, sizeof(portal_router_js)},
        {"snippet-text.js", portal_snippet_text_js, sizeof(portal_snippet_text_js)},
        {"state.js", portal_state_js, sizeof(portal_state_js)},
        {"token-mint.js", portal_token_mint_js, sizeof(portal_token_mint_js)},
        {"token-table.js", portal_token_table_js, sizeof(portal_token_table_js)},
        {"topbar.js", portal_topbar_js, sizeof(portal_topbar_js)},
        {"view-api-form.js", portal_view_api_form_js, sizeof(portal_view_api_form_js)},
        {"view-api-list.js", portal_view_api_list_js, sizeof(portal_view_api_list_js)},
        {"view-api.js", portal_view_api_js, sizeof(portal_view_api_js)},
        {"view-console.js", portal_view_console_js, sizeof(portal_view_console_js)},
        {"view-keys.js", portal_view_keys_js, sizeof(portal_view_keys_js)},
        {"view-login.js", portal_view_login_js, sizeof(portal_view_login_js)},
        {"view-snippets.js", portal_view_snippets_js, sizeof(portal_view_snippets_js)},
        {"view-tokens.js", portal_view_tokens_js, sizeof(portal_view_tokens_js)},
        {"view-users.js", portal_view_users_js, sizeof(portal_view_users_js)},
        {"widgets.js", portal_widgets_js, sizeof(portal_widgets_js)},
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
