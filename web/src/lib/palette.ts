// Okabe-Ito (colour-blind safe) plus a dash pattern per series, so two cues tell agents apart.
const LIGHT = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"];
const DARK = ["#56B4E9", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#0072B2", "#F0F0F0", "#F0E442"];
const DASHES: number[][] = [[], [8, 4], [2, 3], [10, 3, 2, 3], [4, 4], [12, 6], [1, 2], [6, 2, 2, 2, 2, 2]];

export interface SeriesStyle {
  color: string;
  dash: number[];
  marker: string;
}

const MARKERS = ["●", "■", "▲", "◆", "▼", "★", "✚", "⬟"];

export function seriesStyle(index: number, dark: boolean): SeriesStyle {
  const colors = dark ? DARK : LIGHT;
  const cycle = Math.floor(index / colors.length);
  return {
    color: colors[index % colors.length] ?? "#888",
    dash: DASHES[(index + cycle) % DASHES.length] ?? [],
    marker: MARKERS[index % MARKERS.length] ?? "●",
  };
}

export const prefersDark = () =>
  typeof window !== "undefined" && window.matchMedia?.("(prefers-color-scheme: dark)").matches === true;
