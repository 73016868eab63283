"""The site's stylesheet and script, written with every site (nothing is fetched at view time).

The script adds keyboard navigation (left/right arrows follow a page's previous/next links) and
a filter box on layer pages; served by ``ortviz serve --atlas`` (the site under ``/atlas/``), a
channel page gets a link to the channel's live view in the browser. Opened with ``?selfcheck`` in the address, a page also checks
itself once loaded and writes the result as JSON into ``<pre id="selfcheck">``: errors seen
(script errors, resources that failed to load, console.error), every image with its natural
width, every link's resolved address, and on layer pages the layer's channel count beside the
number of channel cells. The browser test reads that back with ``chromium --dump-dom``.
"""

CSS = """\
:root { --fg: #1d232b; --muted: #667; --line: #dde2e8; --bg: #fafbfc; --accent: #2a62c9; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
       color: var(--fg); background: var(--bg); }
header { padding: 14px 24px; border-bottom: 1px solid var(--line); background: #fff; }
header h1 { margin: 0; font-size: 20px; }
header .crumbs { color: var(--muted); font-size: 13px; }
main { padding: 18px 24px 48px; max-width: 1280px; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
h2 { font-size: 17px; margin: 26px 0 10px; }
table { border-collapse: collapse; background: #fff; }
th, td { border: 1px solid var(--line); padding: 4px 10px; text-align: left; vertical-align: middle; }
th { background: #f1f3f6; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.thumb { width: 72px; height: 72px; object-fit: cover; display: block; border-radius: 3px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(132px, 1fr)); gap: 10px; }
.unit { display: block; background: #fff; border: 1px solid var(--line); border-radius: 4px;
        padding: 5px; color: var(--fg); font-size: 13px; }
.unit img { width: 100%; aspect-ratio: 1; object-fit: cover; display: block; border-radius: 2px; }
.unit span { display: block; padding-top: 3px; overflow: hidden; white-space: nowrap;
             text-overflow: ellipsis; }
.unit.failed { color: #a12; border-style: dashed; min-height: 80px; }
.unit.blank { border-style: dotted; opacity: 0.7; }
.picture { display: flex; gap: 26px; flex-wrap: wrap; align-items: flex-start; }
.picture > img { max-width: 100%; image-rendering: auto; border: 1px solid var(--line);
                 background: #fff; }
.muted { color: var(--muted); }
.nav { margin: 6px 0 14px; }
.nav a { margin-right: 14px; }
.examples { display: flex; gap: 10px; flex-wrap: wrap; }
.examples figure { margin: 0; background: #fff; border: 1px solid var(--line); padding: 5px; }
.examples img { height: 120px; display: block; }
.examples figcaption { font-size: 12px; color: var(--muted); }
#filter { padding: 4px 8px; margin-bottom: 10px; width: 16em; }
#selfcheck { display: none; }
"""

JS = """\
(function () {
  "use strict";
  var selfcheck = /[?&]selfcheck(=|&|$)/.test(window.location.search);
  var errors = [];
  if (selfcheck) {
    window.addEventListener("error", function (e) {
      var t = e.target;
      errors.push(t && t !== window ? "failed to load " + (t.src || t.href || t.tagName)
                                    : String(e.message));
    }, true);
    var original = console.error;
    console.error = function () {
      errors.push(Array.prototype.join.call(arguments, " "));
      original.apply(console, arguments);
    };
  }
  document.addEventListener("keydown", function (e) {
    if (e.target && e.target.tagName === "INPUT") { return; }
    var rel = e.key === "ArrowLeft" ? "prev" : e.key === "ArrowRight" ? "next" : null;
    var link = rel && document.querySelector('a[rel="' + rel + '"]');
    if (link) { window.location.href = link.href; }
  });
  document.addEventListener("DOMContentLoaded", function () {
    // served by `ortviz serve --atlas` (the site under /atlas/): a channel's live view
    var live = document.querySelector(".live[data-objective]");
    var at = window.location.pathname.indexOf("/atlas/");
    if (live && /^https?:$/.test(window.location.protocol) && at >= 0) {
      var root = window.location.pathname.slice(0, at + 1);
      fetch(root + "api/bundle", {method: "HEAD"}).then(function (r) {
        if (!r.ok) { return; }
        var a = document.createElement("a");
        a.href = root + "?technique=feature-viz&objective=" +
          encodeURIComponent(live.getAttribute("data-objective"));
        a.textContent = "Live in the browser (onnxruntime-web)";
        live.appendChild(a);
        live.hidden = false;
      }).catch(function () {});
    }
    var box = document.getElementById("filter");
    if (!box) { return; }
    box.addEventListener("input", function () {
      var want = box.value.trim();
      document.querySelectorAll(".grid .unit").forEach(function (cell) {
        var text = cell.getAttribute("data-label") || "";
        cell.style.display = !want || text.indexOf(want) >= 0 ? "" : "none";
      });
    });
  });
  window.addEventListener("load", function () {
    if (!selfcheck) { return; }
    var grid = document.querySelector("[data-channels]");
    var result = {
      page: window.location.pathname,
      errors: errors,
      images: Array.prototype.map.call(document.images, function (img) {
        return {src: img.src, complete: img.complete, naturalWidth: img.naturalWidth};
      }),
      links: Array.prototype.map.call(document.querySelectorAll("a[href]"), function (a) {
        return a.href;
      }),
      layer_channels: grid ? Number(grid.getAttribute("data-channels")) : null,
      channel_cells: document.querySelectorAll(".unit.channel").length
    };
    var pre = document.createElement("pre");
    pre.id = "selfcheck";
    pre.textContent = JSON.stringify(result);
    document.body.appendChild(pre);
  });
}());
"""
