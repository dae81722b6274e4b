// What survives a reload: small values in localStorage, images (init image, mask) in IndexedDB.
const PREFIX = "sdrest.";

export function load(key, fallback) {
  try {
    const raw = localStorage.getItem(PREFIX + key);
    return raw === null ? fallback : JSON.parse(raw);
  } catch {
    return fallback;
  }
}

export function save(key, value) {
  try {
    if (value === undefined) localStorage.removeItem(PREFIX + key);
    else localStorage.setItem(PREFIX + key, JSON.stringify(value));
  } catch { /* storage full or disabled: the UI still works, it just forgets */ }
}

let dbPromise = null;

function db() {
  if (!dbPromise) {
    dbPromise = new Promise((resolve, reject) => {
      const request = indexedDB.open("sdrest", 1);
      request.onupgradeneeded = () => request.result.createObjectStore("images");
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  }
  return dbPromise;
}

async function transact(mode, action) {
  const database = await db();
  return new Promise((resolve, reject) => {
    const tx = database.transaction("images", mode);
    const request = action(tx.objectStore("images"));
    tx.oncomplete = () => resolve(request?.result);
    tx.onerror = () => reject(tx.error);
  });
}

/** Keep an image (a data URL string) under `key`; null deletes it. */
export function saveImage(key, dataUrl) {
  return transact("readwrite", (store) => (dataUrl ? store.put(dataUrl, key) : store.delete(key))).catch(() => null);
}

export function loadImage(key) {
  return transact("readonly", (store) => store.get(key)).catch(() => null);
}
