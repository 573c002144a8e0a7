/** The JSON body of a POST: 415 without `Content-Type: application/json`, 400 `bad_json`. */
import { HttpError, type HttpRequest } from './router.js';

export function jsonBody(req: HttpRequest, wrongType = 'send Content-Type: application/json'): unknown {
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/json') throw new HttpError(415, 'unsupported_media_type', wrongType);
  try {
    return JSON.parse(req.body?.toString('utf8') ?? '');
  } catch {
    throw new HttpError(400, 'bad_json', 'request body is not valid JSON');
  }
}
