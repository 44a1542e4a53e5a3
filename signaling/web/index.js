'use strict';
// The landing page: fill in the last used name and go to /room/{room}?name={name}.
(function () {
  const form = document.getElementById('join-form');
  const roomInput = document.getElementById('room');
  const nameInput = document.getElementById('name');
  try { nameInput.value = localStorage.getItem('sfu.name') || ''; } catch (e) { /* storage may be disabled */ }
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const room = roomInput.value.trim();
    const name = nameInput.value.trim();
    if (!room || !name) return;
    try { localStorage.setItem('sfu.name', name); } catch (e) { /* ignore */ }
    location.href = '/room/' + encodeURIComponent(room) + '?name=' + encodeURIComponent(name);
  });
})();
