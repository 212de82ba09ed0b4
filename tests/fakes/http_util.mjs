// Helpers shared by the fakes in tests/fakes/.
export const MAX_BODY = 1024 * 1024;

// Reads a request body as UTF-8; rejects (and destroys the request) past maxBytes.
export function readBody(req, maxBytes = MAX_BODY) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let n = 0;
    req.on('data', (c) => {
      n += c.length;
      if (n > maxBytes) { reject(new Error('too big')); req.destroy(); return; }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

// Takes the first injected fault matching method and path from faults (an array of
// {method?, pathIncludes?, count, ...}), counting it down and dropping it at 0; null if none.
export function takeFault(faults, method, path) {
  for (let i = 0; i < faults.length; i++) {
    const f = faults[i];
    if (f.method && f.method !== method) continue;
    if (f.pathIncludes && !path.includes(f.pathIncludes)) continue;
    f.count -= 1;
    if (f.count <= 0) faults.splice(i, 1);
    return f;
  }
  return null;
}
