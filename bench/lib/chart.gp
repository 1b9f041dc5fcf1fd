# The chart of a bench/run.sh run: requests/s (top) and p99 latency (bottom) per scenario.
#   gnuplot -e "datafile='chart.dat'; outfile='latest.png'; title='...'" chart.gp
# chart.dat rows (written by report.js): "label" requests_per_s p99_ms colour
#   colour 1 floor, 2 verifyd, 3 peer, 4 verifyd with a pre-filled store
set terminal pngcairo size 1400,900 font "DejaVu Sans,10" noenhanced
set output outfile
set datafile separator whitespace
set style fill solid 0.85 border -1
set boxwidth 0.7
set grid ytics lc rgb "#dddddd"
set xtics rotate by -30 left nomirror
set key off
set rmargin 12
set linetype 1 lc rgb "#7f7f7f"
set linetype 2 lc rgb "#1f77b4"
set linetype 3 lc rgb "#d62728"
set linetype 4 lc rgb "#17becf"
set logscale y
set format y "%.0s%c"
set multiplot layout 2,1 title title font ",12"
set title "requests per second (log scale; grey floor, blue verifyd, red Express + better-sqlite3 peer, cyan verifyd with a pre-filled store)"
set ylabel "requests/s"
stats datafile using 2 nooutput
set yrange [100:STATS_max * 2.5]
plot datafile using 0:2:4:xtic(1) with boxes lc variable, \
     '' using 0:2:(sprintf("%.0f", $2)) with labels offset 0,0.7 font ",9"
set title "p99 latency in ms (log scale)"
set ylabel "p99 ms"
set format y "%g"
stats datafile using 3 nooutput
set yrange [0.1:STATS_max * 2.5]
plot datafile using 0:3:4:xtic(1) with boxes lc variable, \
     '' using 0:3:(sprintf("%.1f", $3)) with labels offset 0,0.7 font ",9"
unset multiplot
