// Tiny DOM helpers: every text from the server goes in through textContent, never innerHTML.

/** Creates an element with attributes (`dataset` and `class` included) and children (nodes or text). */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') element.className = value;
    else if (name.startsWith('on')) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

/** A colored dot for green, yellow, red (or unknown). */
export function dot(color) {
  return h('span', { class: `dot ${color ?? 'unknown'}`, 'aria-hidden': 'true' });
}

export function clock(date) {
  return date.toLocaleTimeString([], { hour12: false });
}

/** `45 s`, `3 min 20 s`, `1 h 5 min`. */
export function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}
