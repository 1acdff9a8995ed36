// Navigation by the location hash: the current path and going somewhere. It
// imports no view, so every module can use it; the router hands it render().

/** The router's render(), set once by router.js (imported here, it would make an import cycle). */
let renderCurrent = () => {};

export function setRenderer(render) {
  renderCurrent = render;
}

export const currentPath = () => location.hash.replace(/^#/, "") || "/apis";

export function go(path) {
  if (currentPath() === path && location.hash) renderCurrent();
  else location.hash = `#${path}`;
}
