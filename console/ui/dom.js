// DOM helpers. Every piece of data reaches the page as a text node or an attribute value, never
// as HTML, so names, commands and output from hosts cannot inject markup.

/**
 * h('a', { href: '#/x', class: 'link' }, 'text', child, [more]) → an element.
 * Props: `class`, `text`, and any attribute (`data-*`, `aria-*`, `href`, …). null/false skip.
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) {
    for (const [key, value] of Object.entries(props)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === 'text') el.textContent = String(value);
      else el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/** Attributes the user changes by interacting, which a refresh must not undo. */
const KEEP = { DETAILS: ['open'] };

/**
 * Makes `target`'s children look like `next` (an array of nodes) while keeping the nodes that
 * already match: no flicker, and the scroll position, text selection and open <details> survive a
 * refresh (form fields live outside the morphed regions). Morphed elements carry no listeners
 * (clicks are delegated), so reusing a node is always safe. `data-key` pins identity in lists.
 */
export function morph(target, next) {
  const old = Array.from(target.childNodes);
  const byKey = new Map();
  for (const node of old) {
    const key = node.nodeType === 1 ? node.getAttribute('data-key') : null;
    if (key !== null) byKey.set(key, node);
  }
  for (let i = 0; i < next.length; i++) {
    const want = next[i];
    const wantKey = want.nodeType === 1 ? want.getAttribute('data-key') : null;
    let have = target.childNodes[i];
    if (wantKey !== null && byKey.has(wantKey) && have !== byKey.get(wantKey)) {
      have = byKey.get(wantKey);
      target.insertBefore(have, target.childNodes[i] ?? null);
    }
    if (!have) {
      target.appendChild(want);
    } else if (!sameKind(have, want)) {
      target.replaceChild(want, have);
    } else if (have.nodeType === 3) {
      if (have.data !== want.data) have.data = want.data;
    } else {
      syncAttributes(have, want);
      morph(have, Array.from(want.childNodes));
    }
  }
  while (target.childNodes.length > next.length) target.removeChild(target.lastChild);
}

function sameKind(a, b) {
  if (a.nodeType !== b.nodeType) return false;
  if (a.nodeType !== 1) return a.nodeType === 3;
  if (a.tagName !== b.tagName) return false;
  return a.getAttribute('data-key') === b.getAttribute('data-key');
}

function syncAttributes(have, want) {
  const keep = KEEP[have.tagName] ?? [];
  for (const attr of Array.from(have.attributes)) {
    if (!want.hasAttribute(attr.name) && !keep.includes(attr.name)) have.removeAttribute(attr.name);
  }
  for (const attr of Array.from(want.attributes)) {
    if (keep.includes(attr.name)) continue;
    if (have.getAttribute(attr.name) !== attr.value) have.setAttribute(attr.name, attr.value);
  }
}

/** Replaces `target`'s content in one step (for regions that are rebuilt, not patched). */
export function setChildren(target, ...children) {
  const frag = document.createDocumentFragment();
  append(frag, children);
  target.replaceChildren(frag);
}

/** morph() with h()-style children: strings, nodes, arrays, null. */
export function patch(target, ...children) {
  const frag = document.createDocumentFragment();
  append(frag, children);
  morph(target, Array.from(frag.childNodes));
}
