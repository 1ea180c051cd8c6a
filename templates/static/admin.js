// The purchase model's expected buyers beside a count, when followers have scores.
function expectedText(body) {
  return typeof body.expected_buyers === "number" ? "，预计其中约 " + body.expected_buyers + " 人 7 天内下单" : "";
}

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
          if (typeof body.members === "number") show("当前符合条件的已关注粉丝：" + body.members + " 人" + expectedText(body), false);
          else show("第 " + body.position + " 列：" + body.message, true);
        })
        .catch(function () {});
    }, 400);
  });
})();

// 人群's builder: recount (and rewrite the expression) as conditions change, asking the server
// to compose the same groups the 生成表达式 button would submit. Adding and removing rows and
// groups are the server's buttons: one composition, one place.
(function () {
  var form = document.getElementById("segment-builder");
  var box = document.getElementById("segment-expr");
  var out = document.getElementById("segment-result");
  var shown = document.getElementById("segment-built");
  if (!form || !box || !out) return;
  var timer = null;
  var seq = 0;
  function say(text, isError) {
    out.textContent = "";
    var p = document.createElement("p");
    p.className = isError ? "error" : "count";
    p.textContent = text;
    out.appendChild(p);
  }
  function recount() {
    var params = new URLSearchParams(new FormData(form));
    params.set("build", "1");
    var mine = ++seq;
    fetch("/admin/segments/count?" + params.toString(), { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (body) {
        if (mine !== seq || body.empty) return;
        if (body.expr) {
          box.value = body.expr;
          if (shown) shown.textContent = body.expr;
          var saved = document.querySelector("#segment-save input[name=expr]");
          if (saved) saved.value = body.expr;
        }
        if (typeof body.members === "number") say("当前符合条件的已关注粉丝：" + body.members + " 人" + expectedText(body), false);
        else if (body.message) say((body.position ? "第 " + body.position + " 列：" : "") + body.message, true);
      })
      .catch(function () {});
  }
  function later() { clearTimeout(timer); timer = setTimeout(recount, 400); }
  form.addEventListener("input", later);
  form.addEventListener("change", later);
})();

// The nav: from 721 px up it is always shown; browsers without ::details-content get it opened.
(function () {
  var menu = document.getElementById("menu");
  if (menu && window.matchMedia && window.matchMedia("(min-width: 721px)").matches) menu.open = true;
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

// 新建群发: the phone preview follows the text as it is typed (the server draws it on every
// redraw; this only saves a round trip for text messages).
(function () {
  var box = document.querySelector("form textarea[name=content]");
  var kind = document.querySelector("form select[name=kind]");
  var bubble = document.querySelector("#compose-phone .phone-bubble");
  if (!box || !kind || !bubble) return;
  var hint = "（写好内容后，这里显示粉丝在手机上看到的样子）";
  box.addEventListener("input", function () {
    if (kind.value !== "text") return;
    var text = box.value;
    bubble.textContent = text.trim() ? text : hint;
    bubble.classList.toggle("muted", !text.trim());
  });
})();
