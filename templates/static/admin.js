// Progressive enhancement only: every page works without this file.
// 人群: recount the members while the expression is typed.
(function () {
  var box = document.getElementById("segment-expr");
  var out = document.getElementById("segment-result");
  if (!box || !out) return;
  var timer = null;
  var seq = 0;
  function show(text, isError) {
    out.textContent = "";
    var p = document.createElement("p");
    p.className = isError ? "error" : "count";
    p.textContent = text;
    out.appendChild(p);
  }
  // The save form carries the expression counted last; keep it in step with what is typed.
  var saved = document.querySelector("form[method=post][action='/admin/segments'] input[name=expr]");
  box.addEventListener("input", function () {
    if (saved) saved.value = box.value;
    clearTimeout(timer);
    timer = setTimeout(function () {
      var expr = box.value.trim();
      if (!expr) { out.textContent = ""; return; }
      var mine = ++seq;
      fetch("/admin/segments/count?expr=" + encodeURIComponent(expr), { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (body) {
          if (mine !== seq) return;
          if (typeof body.members === "number") show("当前符合条件的已关注粉丝：" + body.members + " 人", false);
          else show("第 " + body.position + " 列：" + body.message, true);
        })
        .catch(function () {});
    }, 400);
  });
})();

// The account switcher: switch as soon as another account is chosen (the button stays for keyboards).
(function () {
  var select = document.getElementById("account-select");
  if (!select || !select.form) return;
  select.addEventListener("change", function () { select.form.submit(); });
})();

// 新建群发: the figures 计算人数 showed describe the audience they were counted for; once the
// audience or the A/B groups change they are marked out of date until counted again.
(function () {
  var reach = document.getElementById("audience-reach");
  var form = reach && reach.closest("form");
  if (!form) return;
  form.addEventListener("change", function (event) {
    var name = event.target.name || "";
    var audience = name === "audience" || name === "tag" || name === "segment" || name.indexOf("variant_") === 0;
    if (!audience || reach.classList.contains("stale")) return;
    reach.classList.add("stale");
    var note = document.createElement("p");
    note.className = "warn small";
    note.id = "reach-stale";
    note.textContent = "受众已修改，下面的人数已过期：请重新点「计算人数」。";
    reach.insertBefore(note, reach.firstChild);
  });
})();
