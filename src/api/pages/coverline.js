/*!
 * Coverline checkout widget: <coverline-offers>
 * Drop-in web component that fetches service-plan offers for one product and
 * lets the shopper pick one (or "no protection"). Dependency-free classic script.
 *
 * Security notes: all DOM is built with createElement + text nodes (never
 * innerHTML); styles only via a constructed stylesheet (CSP-friendly); requests
 * never send cookies; nothing is stored in cookies/localStorage.
 */
(() => {
  "use strict";
  if (typeof customElements === "undefined" || customElements.get("coverline-offers")) return;

  // Localized chrome texts, injected by the server when serving this file.
  const TEXTS = /*COVERLINE_TEXTS*/{};

  const SUPPORTED = ["en", "fil", "hi", "sv", "ar", "vi"];
  const BILLING = ["upfront", "monthly", "annual"];
  const ATTRS = ["publishable-key", "category", "sku", "price", "currency", "purchase-date",
    "country", "serial", "locale", "api-base"];

  // Default API base: origin of this script's own src, captured at load time.
  const API_BASE = (() => {
    try { return new URL(document.currentScript.src).origin; } catch (_) { return location.origin; }
  })();

  const CSS = `
:host{display:block;color:#1a1a1a;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",Arial,sans-serif}
:host([hidden]){display:none}
.w{background:#fff;color:#1a1a1a}
fieldset{border:0;margin:0;padding:0;min-inline-size:0}
legend{padding:0;margin-block-end:.5em;font-weight:600;font-size:1.05em}
.o{border:1px solid #767676;border-radius:8px;padding:.75em;margin-block-end:.5em;background:#fff}
.o:has(input:checked){border-color:#0b57d0;box-shadow:0 0 0 1px #0b57d0;background:#f3f7fe}
label{display:flex;gap:.6em;align-items:flex-start;cursor:pointer}
input{flex:none;margin:.2em 0 0;inline-size:1.1em;block-size:1.1em;accent-color:#0b57d0}
:focus-visible{outline:3px solid #0b57d0;outline-offset:2px}
.n,.p,.s{display:block}
.n{font-weight:700}
.s{color:#444}
details{margin-block-start:.4em;padding-inline-start:1.7em}
summary{cursor:pointer;color:#0b57d0}
ul{margin:.3em 0 0;padding-inline-start:1.2em}
.st{margin:0;padding:.5em 0}`;
  let sheet = null; // shared by all instances, created on first use

  /** Primary language subtag mapped to a supported locale ("tl" -> "fil"), or "". */
  const norm = (tag) => {
    const p = String(tag || "").trim().toLowerCase().split(/[-_]/)[0];
    const l = p === "tl" ? "fil" : p;
    return SUPPORTED.includes(l) ? l : "";
  };
  /** locale attribute, else first supported navigator language, else "en". */
  const pickLocale = (attr) => norm(attr) ||
    (navigator.languages || [navigator.language]).map(norm).find(Boolean) || "en";

  const pad = (n) => String(n).padStart(2, "0");
  /** Today's date in the browser's local time zone, YYYY-MM-DD. */
  const today = () => {
    const d = new Date();
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  };
  const toInt = (s) => (/^-?\d+$/.test(s) ? parseInt(s, 10) : null);

  /**
   * Tiny DOM builder. props are assigned as element properties (null skipped);
   * children are nodes or strings (strings become text nodes, never parsed as HTML).
   */
  const el = (tag, props, ...kids) => {
    const e = document.createElement(tag);
    for (const k in props || {}) if (props[k] != null) k in e ? (e[k] = props[k]) : e.setAttribute(k, props[k]);
    for (const c of kids) if (c != null && c !== "") e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return e;
  };

  /** Public, frozen summary of an offer (event detail / selectedOffer). */
  const summarize = (o) => {
    const p = o.plan || {}, pr = o.price || {};
    return Object.freeze({
      offer_id: o.offer_id, offer_token: o.offer_token,
      plan_code: p.code, plan_version: p.version, plan_name: p.name,
      price: Object.freeze({ amount: pr.amount, currency: pr.currency, display: pr.display }),
      billing: p.billing, expires_at: o.expires_at,
    });
  };

  let seq = 0; // per-instance radio group names

  class CoverlineOffers extends HTMLElement {
    static get observedAttributes() { return ATTRS; }

    constructor() {
      super();
      const root = this.attachShadow({ mode: "open" });
      if (!sheet) { sheet = new CSSStyleSheet(); sheet.replaceSync(CSS); }
      root.adoptedStyleSheets = [sheet];
      this._root = root;
      this._name = `coverline-${++seq}`;
      this._sel = null;     // currently selected offer summary, or null
      this._req = 0;        // id of the latest request (stale responses are ignored)
      this._ctl = null;     // AbortController of the in-flight request
      this._queued = false; // debounce flag
      this._texts = {};
    }

    /** Selected offer summary, or null for "no protection" / nothing loaded. */
    get selectedOffer() { return this._sel; }
    /** The selected offer_token, or "" when none. */
    get value() { return this._sel ? this._sel.offer_token || "" : ""; }

    connectedCallback() { this._schedule(); }
    disconnectedCallback() { if (this._ctl) this._ctl.abort(); this._ctl = null; }
    attributeChangedCallback(_n, a, b) { if (a !== b && this.isConnected) this._schedule(); }

    /** Coalesce bursts of attribute changes into a single request. */
    _schedule() {
      if (this._queued) return;
      this._queued = true;
      queueMicrotask(() => { this._queued = false; if (this.isConnected) this._load(); });
    }

    /** Translate key, substituting {name} placeholders; falls back to the key. */
    _t(key, vars) {
      const s = this._texts[key];
      if (s == null) return key;
      return String(s).replace(/\{(\w+)\}/g, (m, n) => (vars && vars[n] != null ? String(vars[n]) : m));
    }

    _useLocale(loc) { this._texts = TEXTS[loc] || TEXTS.en || {}; }

    /** Replace the shadow content with a wrapper carrying lang/dir. */
    _render(lang, ...kids) {
      const dir = norm(lang) === "ar" ? "rtl" : "ltr";
      this._root.replaceChildren(el("div", { className: "w", lang, dir }, ...kids));
    }

    _status(key) { return el("p", { className: "st", role: "status" }, this._t(key)); }

    /** Update the selection and notify the page (only on change unless forced). */
    _select(offer, force) {
      if (!force && offer === this._sel) return;
      this._sel = offer;
      this.dispatchEvent(new CustomEvent("coverline-offer-selected",
        { bubbles: true, composed: true, detail: { offer } }));
    }

    async _load() {
      const id = ++this._req;
      if (this._ctl) this._ctl.abort();
      const ctl = this._ctl = new AbortController();
      const a = (n) => (this.getAttribute(n) || "").trim();
      const locale = pickLocale(a("locale"));
      this._useLocale(locale);
      this.removeAttribute("hidden");
      this._render(locale, this._status("loading"));

      const product = {
        category: a("category"), sku: a("sku"),
        price: { amount: toInt(a("price")), currency: a("currency").toUpperCase() },
        purchase_date: a("purchase-date") || today(),
        country: a("country").toUpperCase(),
      };
      if (a("serial")) product.serial = a("serial");
      const base = (a("api-base") || API_BASE).replace(/\/+$/, "");

      let data = null;
      try {
        const res = await fetch(`${base}/v1/offers`, {
          method: "POST", mode: "cors", credentials: "omit", signal: ctl.signal,
          headers: {
            Authorization: `Bearer ${a("publishable-key")}`,
            "Content-Type": "application/json",
            "Accept-Language": locale,
          },
          body: JSON.stringify({ product, locale }),
        });
        const body = await res.json().catch(() => null);
        if (res.status === 200) data = body;
        else if (body && window.console) console.warn("coverline:", res.status, body.title || "", body.detail || "");
      } catch (_) {
        if (ctl.signal.aborted) return; // superseded or disconnected
      }
      if (id !== this._req) return;
      this._ctl = null;

      if (!data || !Array.isArray(data.offers)) {
        this._render(locale, this._status("unavailable"));
        this._select(null, true);
        return;
      }

      const lang = typeof data.locale === "string" && data.locale ? data.locale : locale;
      this._useLocale(norm(lang) || locale);
      const offers = data.offers.filter((o) => o && typeof o === "object");
      if (!offers.length) {
        this._root.replaceChildren();
        this.setAttribute("hidden", "");
        this._select(null);
        return;
      }
      this._render(lang, el("fieldset", null, el("legend", null, this._t("heading")),
        ...offers.map((o) => this._card(o)), this._noneCard()));
      this._select(null); // "no protection" is the default choice
    }

    /** A radio wired to select `offer` (a summary or null) when checked. */
    _radio(offer, checked) {
      const input = el("input", { type: "radio", name: this._name, value: offer ? offer.offer_token || "" : "", checked });
      input.addEventListener("change", () => { if (input.checked) this._select(offer); });
      return input;
    }

    /**
     * One option card. The <details> sits next to (not inside) the <label>:
     * interactive content inside a label is invalid and would also toggle the radio.
     */
    _card(o) {
      const p = o.plan || {}, pr = o.price || {};
      const bill = BILLING.includes(p.billing) ? this._t(`billing_${p.billing}`, { price: pr.display }) : pr.display;
      const clauses = Array.isArray(p.clauses) ? p.clauses.filter((c) => c && c.text) : [];
      return el("div", { className: "o" },
        el("label", null, this._radio(summarize(o), false),
          el("span", null,
            el("strong", { className: "n" }, p.name),
            el("span", { className: "p" }, bill),
            p.summary ? el("span", { className: "s" }, p.summary) : null)),
        clauses.length ? el("details", null, el("summary", null, this._t("terms")),
          el("ul", null, ...clauses.map((c) => el("li", null, c.text)))) : null);
    }

    _noneCard() {
      return el("div", { className: "o" },
        el("label", null, this._radio(null, true), el("span", { className: "n" }, this._t("none"))));
    }
  }

  if (!customElements.get("coverline-offers")) customElements.define("coverline-offers", CoverlineOffers);
  window.CoverlineOffers = CoverlineOffers;
})();
