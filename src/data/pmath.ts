/**
 * exp and log with the same operations as native/pmath.h, so the synthetic environment
 * gives bit-identical results in TypeScript and C++. V8's Math.exp/Math.log and glibc's
 * may differ in the last place; these do not. Algorithms: fdlibm's reductions and
 * minimax coefficients.
 */

const scratch = new DataView(new ArrayBuffer(8));

const LN2_HI = 6.93147180369123816490e-1;
const LN2_LO = 1.90821492927058770002e-10;
const INV_LN2 = 1.44269504088896338700e0;

/** 2^k for -1022 <= k <= 1023, exactly. */
function pow2i(k: number): number {
  scratch.setUint32(0, (k + 1023) << 20 >>> 0);
  scratch.setUint32(4, 0);
  return scratch.getFloat64(0);
}

/** e^x, bit-identical to saco::pmath::exp. */
export function pexp(x: number): number {
  if (x !== x) return x;
  if (x > 709.782712893383973096) return Infinity;
  if (x < -745.13321910194110842) return 0;
  const k = Math.trunc(x * INV_LN2 + (x < 0 ? -0.5 : 0.5));
  const hi = x - k * LN2_HI;
  const lo = k * LN2_LO;
  const r = hi - lo;
  const t = r * r;
  const c =
    r -
    t *
      (1.66666666666666019037e-1 +
        t *
          (-2.77777777770155933842e-3 +
            t * (6.61375632143793436117e-5 + t * (-1.65339022054652515390e-6 + t * 4.13813679705723846039e-8))));
  const y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi);
  if (k >= -1021) {
    if (k === 1024) return y * 2.0 * pow2i(1023);
    return y * pow2i(k);
  }
  return y * pow2i(k + 1000) * pow2i(-1000);
}

/** Natural logarithm, bit-identical to saco::pmath::log. */
export function plog(x: number): number {
  if (x !== x || x < 0) return NaN;
  if (x === 0) return -Infinity;
  if (x === Infinity) return x;
  let k = 0;
  if (x < 2.2250738585072014e-308) {
    k -= 54;
    x *= 18014398509481984.0;
  }
  scratch.setFloat64(0, x);
  let hx = scratch.getUint32(0);
  k += (hx >>> 20) - 1023;
  hx &= 0x000fffff;
  const i = (hx + 0x95f64) & 0x100000;
  scratch.setUint32(0, (hx | (i ^ 0x3ff00000)) >>> 0);
  x = scratch.getFloat64(0);
  k += i >>> 20;
  const f = x - 1.0;
  const s = f / (2.0 + f);
  const z = s * s;
  const w = z * z;
  const t1 = w * (3.999999999940941908e-1 + w * (2.222219843214978396e-1 + w * 1.531383769920937332e-1));
  const t2 =
    z * (6.666666666666735130e-1 + w * (2.857142874366239149e-1 + w * (1.818357216161805012e-1 + w * 1.479819860511658591e-1)));
  const R = t2 + t1;
  const hfsq = 0.5 * f * f;
  return k * LN2_HI - ((hfsq - (s * (hfsq + R) + k * LN2_LO)) - f);
}

/** 1 / (1 + e^-x). */
export function psigmoid(x: number): number {
  return 1.0 / (1.0 + pexp(-x));
}

/** log(1 + e^x) without overflow. */
export function psoftplus(x: number): number {
  if (x > 0) return x + plog(1.0 + pexp(-x));
  return plog(1.0 + pexp(x));
}
