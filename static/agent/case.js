// The case page (templates/agent/case.html): 1-9 pick an outcome (a callback then asks for its time),
// Ctrl+Enter saves, and the first outcome has the focus so the keys work at once.
(function () {
  var radios = document.querySelectorAll('#disposition input[name="outcome"]');
  document.addEventListener("keydown", function (e) {
    var typing = /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName) && document.activeElement.type !== "radio";
    if ((e.ctrlKey || e.metaKey) && e.key === "Enter") { e.preventDefault(); document.getElementById("save").click(); return; }
    if (!typing && e.key >= "1" && e.key <= "9" && radios[e.key - 1]) {
      e.preventDefault(); radios[e.key - 1].checked = true; radios[e.key - 1].focus();
      if (radios[e.key - 1].value === "callback_requested") { document.getElementById("id_callback_at").focus(); }
    }
  });
  if (radios.length) { radios[0].focus(); }
})();
