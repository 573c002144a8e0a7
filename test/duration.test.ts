import t from 'tap';
import { DurationError, formatDuration, parseDuration, parseWholeMs } from '../shared/duration.js';

t.test('Go-style durations to milliseconds', async (t) => {
  const cases: [string, number][] = [
    ['500ms', 500],
    ['30s', 30_000],
    ['5m', 300_000],
    ['168h', 604_800_000],
    ['1h30m', 5_400_000],
    ['1.5h', 5_400_000],
    ['.5s', 500],
    ['2m3s4ms', 123_004],
    ['1500us', 1.5],
    ['1000000ns', 1],
    ['0', 0],
    ['-1s', -1000],
  ];
  for (const [text, ms] of cases) t.equal(parseDuration(text), ms, text);
});

t.test('bad durations', async (t) => {
  for (const text of ['', '5', '5x', '1 m', 's', '1h 30m', 'm5', '1d', '1e3s', '--1s']) {
    t.throws(() => parseDuration(text), DurationError, JSON.stringify(text));
  }
  t.throws(() => parseDuration('5'), { message: /invalid duration "5": missing or unknown unit/ });
});

t.test('whole milliseconds', async (t) => {
  t.equal(parseWholeMs('1.5s'), 1500);
  t.equal(parseWholeMs('1000000ns'), 1);
  t.equal(parseWholeMs('2000us'), 2);
  for (const text of ['1500us', '500us', '1ns', '1.5ms', '0.1ms']) {
    t.throws(
      () => parseWholeMs(text),
      { name: 'DurationError', message: /not a whole number of milliseconds/ },
      text,
    );
  }
});

t.test('formatDuration', async (t) => {
  t.equal(formatDuration(90_000), '1m30s');
  t.equal(formatDuration(604_800_000), '168h');
  t.equal(formatDuration(1500), '1s500ms');
  t.equal(formatDuration(0), '0s');
});
