// A QR code drawn as SVG from qrcode-generator's module matrix (no
// innerHTML, scales crisply, dark on a light quiet zone in both themes).
import qrcode from "qrcode-generator";

export function QrCode(props: { text: string; label: string; size?: number; testid?: string }) {
  const qr = qrcode(0, "M");
  qr.addData(props.text, "Byte");
  qr.make();
  const n = qr.getModuleCount();
  const margin = 4;
  const dim = n + 2 * margin;
  let d = "";
  for (let r = 0; r < n; r++)
    for (let c = 0; c < n; c++) if (qr.isDark(r, c)) d += `M${c + margin} ${r + margin}h1v1h-1z`;
  const size = props.size ?? 224;
  return (
    <svg
      xmlns="http://www.w3.org/2000/svg"
      viewBox={`0 0 ${dim} ${dim}`}
      width={size}
      height={size}
      role="img"
      aria-label={props.label}
      data-testid={props.testid}
      data-modules={n}
      shape-rendering="crispEdges"
      class="trust-qr"
    >
      <rect width={dim} height={dim} fill="#fff" />
      <path d={d} fill="#000" />
    </svg>
  );
}
