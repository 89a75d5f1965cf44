/**
 * xterm.js's DOM renderer styles itself by writing CSS into <style> elements it
 * creates (theme colours, font, cursor, selection, scrollbar). Our CSP has no
 * 'unsafe-inline' for styles — inline CSS is an injection vector we refuse — so
 * the browser would block those elements (and log a violation per rewrite).
 *
 * CSSOM is not subject to that rule, so we keep xterm's <style> elements in a
 * detached holder (never applied, never reported) and mirror their text into
 * constructable stylesheets adopted by the document. Only xterm writes into these
 * elements, so this does not reopen the door for arbitrary inline styles.
 *
 * 24-bit colour cells and the selection are styled with span style attributes:
 * see installSpanStyleShim below.
 */
export interface StyleMirror {
  /** Run `fn` (xterm's `open`) with any <style> it appends redirected into the holder. */
  captureDuring<T>(fn: () => T): T;
  dispose(): void;
}

export function createStyleMirror(root: HTMLElement): StyleMirror {
  const doc = root.ownerDocument;
  const supported = typeof CSSStyleSheet !== 'undefined' && 'adoptedStyleSheets' in doc;
  const holder = doc.createElement('div');
  const sheets = new Map<HTMLStyleElement, { sheet: CSSStyleSheet; text: string }>();

  const sync = () => {
    // A <style> that reached the live tree anyway (e.g. a renderer rebuilt later) moves to the holder.
    for (const el of root.querySelectorAll('style')) holder.appendChild(el);
    for (const el of holder.querySelectorAll('style')) {
      const text = el.textContent ?? '';
      let entry = sheets.get(el);
      if (!entry) {
        entry = { sheet: new CSSStyleSheet(), text: '' };
        sheets.set(el, entry);
        doc.adoptedStyleSheets = [...doc.adoptedStyleSheets, entry.sheet];
      }
      if (entry.text !== text) {
        try {
          entry.sheet.replaceSync(text);
        } catch {
          // Malformed CSS from the library would only mean missing styling.
        }
        entry.text = text;
      }
    }
    for (const [el, entry] of sheets) {
      if (el.parentNode !== holder) {
        doc.adoptedStyleSheets = doc.adoptedStyleSheets.filter((s) => s !== entry.sheet);
        sheets.delete(el);
      }
    }
  };

  if (!supported) return { captureDuring: (fn) => fn(), dispose: () => {} };

  const mo = new MutationObserver(sync);
  mo.observe(root, { subtree: true, childList: true });
  mo.observe(holder, { subtree: true, childList: true, characterData: true });

  return {
    captureDuring<T>(fn: () => T): T {
      // Scoped to one synchronous call: xterm creates and fills its <style>
      // elements inside open(); appending them to the holder instead of the
      // live tree means the CSP never sees them.
      const proto = Node.prototype;
      const original = proto.appendChild;
      proto.appendChild = function appendChild<N extends Node>(this: Node, child: N): N {
        return original.call(child instanceof HTMLStyleElement ? holder : this, child) as N;
      };
      try {
        return fn();
      } finally {
        proto.appendChild = original;
        sync();
      }
    },
    dispose() {
      mo.disconnect();
      for (const { sheet } of sheets.values()) doc.adoptedStyleSheets = doc.adoptedStyleSheets.filter((s) => s !== sheet);
      sheets.clear();
    },
  };
}

let shimUsers = 0;
let originalSetAttribute: typeof Element.prototype.setAttribute | null = null;

/**
 * xterm's DOM renderer colours 24-bit cells and the selection with
 * `span.setAttribute('style', …)`, which `style-src 'self'` blocks (and logs).
 * While a terminal is mounted, a `style` attribute set *from script* on a <span>
 * is applied through CSSOM (`el.style.cssText`) instead.
 *
 * This grants nothing new: any script able to call setAttribute can already set
 * `el.style.cssText`, which the CSP allows. What the CSP's inline-style rule
 * protects against — style attributes in injected markup — is untouched, because
 * the HTML parser never goes through Element.prototype.setAttribute.
 * Returns the uninstall function; installs once however many terminals exist.
 */
export function installSpanStyleShim(): () => void {
  if (shimUsers++ === 0) {
    const original = Element.prototype.setAttribute;
    originalSetAttribute = original;
    Element.prototype.setAttribute = function setAttribute(this: Element, name: string, value: string): void {
      if (this instanceof HTMLSpanElement && name.toLowerCase() === 'style') {
        this.style.cssText = String(value);
        return;
      }
      original.call(this, name, value);
    };
  }
  let done = false;
  return () => {
    if (done) return;
    done = true;
    if (--shimUsers === 0 && originalSetAttribute) {
      Element.prototype.setAttribute = originalSetAttribute;
      originalSetAttribute = null;
    }
  };
}
