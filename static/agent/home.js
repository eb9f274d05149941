// The queue page (templates/agent/home.html): "n" claims the next customer, as the button does.
document.addEventListener("keydown", function (e) {
  if (e.key === "n" && !e.ctrlKey && !e.metaKey && !e.altKey) { e.preventDefault(); document.getElementById("next").click(); }
});
