// Typesets the site's TeX with the KaTeX copy in docs/vendor/katex/, so formulas render
// without a network connection (see mkdocs.yml).
//
// pymdownx.arithmatex (generic mode) leaves inline math as <span class="arithmatex">\(...\)</span>
// and display math as <div class="arithmatex">\[...\]</div>. Each element is rendered on its own
// instead of scanning the page for delimiters (KaTeX's auto-render), so text outside those
// elements, such as a "\(" in a code block, is never touched.
(function () {
  "use strict";

  function render(el, tex, display) {
    try {
      katex.render(tex, el, { displayMode: display, throwOnError: true });
      el.dataset.typeset = "katex";
    } catch (err) {
      // The TeX source stays on the page, readable; the console error is what the site's
      // browser test (tests/test_docs_site.py) reports, with the formula that failed.
      console.error("KaTeX could not typeset " + JSON.stringify(tex) + ": " + err.message);
    }
  }

  function typesetFormulas(root) {
    root.querySelectorAll(".arithmatex").forEach(function (el) {
      if (el.dataset.typeset) return; // already done (document$ can emit again)
      var display = el.tagName === "DIV";
      var tex = el.textContent.trim();
      var open = display ? "\\[" : "\\(";
      var close = display ? "\\]" : "\\)";
      if (tex.startsWith(open) && tex.endsWith(close)) {
        tex = tex.slice(open.length, tex.length - close.length);
      }
      render(el, tex, display);
    });
  }

  // The table of contents copies a heading's text, so a formula in a heading arrives there as
  // plain "\(...\)" text, outside any .arithmatex element.
  function typesetNavigation(root) {
    root.querySelectorAll(".md-nav__link").forEach(function (link) {
      var walker = document.createTreeWalker(link, NodeFilter.SHOW_TEXT);
      var nodes = [];
      while (walker.nextNode()) nodes.push(walker.currentNode);
      nodes.forEach(function (node) {
        var parts = node.nodeValue.split(/(\\\(.+?\\\))/);
        if (parts.length === 1) return;
        var frag = document.createDocumentFragment();
        parts.forEach(function (part, i) {
          if (i % 2 === 0) {
            if (part) frag.appendChild(document.createTextNode(part));
            return;
          }
          var span = document.createElement("span");
          span.className = "arithmatex";
          span.textContent = part;
          render(span, part.slice(2, -2), false);
          frag.appendChild(span);
        });
        node.parentNode.replaceChild(frag, node);
      });
    });
  }

  function typeset(root) {
    typesetFormulas(root);
    typesetNavigation(root);
  }

  // mkdocs-material announces each page it shows on document$ (also after instant loading);
  // without the theme's bundle, the DOM being ready is enough.
  if (typeof document$ !== "undefined") {
    document$.subscribe(function () {
      typeset(document.body);
    });
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () {
      typeset(document.body);
    });
  } else {
    typeset(document.body);
  }
})();
