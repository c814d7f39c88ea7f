// Copy buttons: <button data-copy="ID"> copies the value of the input ID.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const input = document.getElementById(button.dataset.copy);
  try {
    await navigator.clipboard.writeText(input.value);
  } catch {
    input.select(); // no clipboard access: leave it selected for Ctrl+C
    document.execCommand("copy");
  }
  button.textContent = "Copied";
});
