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
