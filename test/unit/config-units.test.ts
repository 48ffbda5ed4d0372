// Times and sizes read exactly as nginx reads them (ngx_parse_time, ngx_parse_offset).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseNumber, parseSize, parseTime } from '../../src/config/units.js'

const s = 1000
const m = 60 * s
const h = 60 * m
const d = 24 * h

// Millisecond directives (proxy_*_timeout, keepalive_timeout): what nginx accepts and rejects.
const msCases: Array<[string, number | null]> = [
  ['0', 0],
  ['1', 1 * s], // the tutorial's `proxy_connect_timeout 1`: a bare number is seconds
  ['60', 60 * s],
  ['30s', 30 * s],
  ['500ms', 500],
  ['1m', m],
  ['1m30s', m + 30 * s],
  ['1m30', m + 30 * s], // a trailing bare number is seconds
  ['1h 30m', h + 30 * m], // spaces between parts
  ['1h30m15s250ms', h + 30 * m + 15 * s + 250],
  ['2d', 2 * d],
  ['1w', 7 * d],
  ['30 5', 35 * s], // nginx adds a bare number after a space, too
  ['', null],
  ['s', null],
  ['ms', null],
  ['-1', null],
  ['1.5s', null],
  ['1x', null],
  ['30s1m', null], // units must go from largest to smallest
  ['1s1s', null], // each unit once
  ['1s 5 ', null],
  ['1y', null], // ms directives start past months in nginx: no y or M
  ['1M', null],
  ['99999999999999999999', null],
]

// Time parsing for millisecond directives matches nginx case by case.
test('parseTime (ms directives) matches nginx', () => {
  for (const [text, want] of msCases) assert.equal(parseTime(text), want, JSON.stringify(text))
})

// Second-granular values (`fail_timeout=`) allow y and M but not ms, and still return ms.
test('parseTime (second directives) matches nginx', () => {
  const cases: Array<[string, number | null]> = [
    ['10', 10 * s],
    ['10s', 10 * s],
    ['1y', 365 * d],
    ['1M', 30 * d],
    ['1y1M1w', 365 * d + 30 * d + 7 * d],
    ['500ms', null],
    ['1M1y', null],
  ]
  for (const [text, want] of cases) assert.equal(parseTime(text, 's'), want, JSON.stringify(text))
})

// Sizes: one k/m/g suffix (either case) on a plain decimal number.
test('parseSize matches nginx', () => {
  const cases: Array<[string, number | null]> = [
    ['0', 0],
    ['512', 512],
    ['16k', 16 * 1024],
    ['16K', 16 * 1024],
    ['1m', 1024 ** 2],
    ['1M', 1024 ** 2],
    ['2g', 2 * 1024 ** 3],
    ['2G', 2 * 1024 ** 3],
    ['', null],
    ['k', null],
    ['1.5m', null],
    ['1mb', null],
    ['1t', null],
    ['-1', null],
    [' 1', null],
  ]
  for (const [text, want] of cases) assert.equal(parseSize(text), want, JSON.stringify(text))
})

// Integers like ngx_atoi: digits only.
test('parseNumber accepts only digits', () => {
  assert.equal(parseNumber('0'), 0)
  assert.equal(parseNumber('1024'), 1024)
  for (const bad of ['', '-1', '+1', '1.0', '1e3', ' 1', '0x10']) assert.equal(parseNumber(bad), null, bad)
})
