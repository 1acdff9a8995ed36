// The {parameters} of an endpoint's path template: their names, their inputs
// (values remembered per API and endpoint) and the concrete endpoint they make.

import { h, field } from "./dom.js";
import { state } from "./state.js";
import { localError } from "./rest.js";

const DEFAULT_PARAM_VALUE = "example";

/** The parameter names of a path template: `/a/{x}/{y}` -> ["x", "y"]. */
export function pathParams(path) {
  return [...path.matchAll(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g)].map((m) => m[1]);
}

const paramKey = (api, endpoint, name) => `${api.name}|${endpoint.path}|${name}`;

/** Inputs for the {params} of an endpoint's path, remembered per API and endpoint. */
export function paramInputs(api, endpoint, onChange) {
  return pathParams(endpoint.path).map((name) => {
    const key = paramKey(api, endpoint, name);
    const input = h("input", { value: state.paramValues.get(key) ?? DEFAULT_PARAM_VALUE, spellcheck: "false", autocomplete: "off",
      dataset: { param: name } });
    const remember = () => {
      state.paramValues.set(key, input.value);
      onChange?.();
    };
    input.addEventListener("input", remember);
    input.addEventListener("change", remember);
    return field(`{${name}}`, input, { hint: "One path segment.", name: `param.${name}` });
  });
}

/** The endpoint's path with its parameters filled in; throws when one is empty or not one segment. */
export function concreteEndpoint(api, endpoint) {
  return endpoint.path.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name) => {
    const value = (state.paramValues.get(paramKey(api, endpoint, name)) ?? DEFAULT_PARAM_VALUE).trim();
    if (!value || value.includes("/")) throw localError(`Give {${name}} a value: one path segment, no '/'.`, `param.${name}`);
    return value;
  });
}
