#!/bin/sh
# Generates the "be right back" slates of the relay's disconnect protection
# (docs/relay.md "Disconnect protection"): H.264 constrained baseline (no
# B-frames, closed GOP, a keyframe every 2 s) + AAC-LC 48 kHz stereo (silence),
# 4 s long, FLV, for 1280x720 and 1920x1080 at 30 and 60 fps. The relay loads
# them once (RELAY_SLATE_DIR, default assets/slates) and loops them with
# continuous timestamps: nothing is encoded in C.
#
# Usage: scripts/gen_slates.sh [outdir]   (needs ffmpeg with libx264 and drawtext)
set -eu
out=${1:-assets/slates}
font=${SLATE_FONT:-/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf}
secs=4
mkdir -p "$out"
for size in 1280x720 1920x1080; do
  w=${size%x*}
  h=${size#*x}
  for fps in 30 60; do
    f="$out/brb_${w}x${h}_${fps}.flv"
    big=$((h / 9))
    small=$((h / 24))
    # A bar sliding across the bottom once per clip, so the loop is seamless.
    vf="drawtext=fontfile=$font:text='Be right back':fontcolor=white:fontsize=$big"
    vf="$vf:x=(w-text_w)/2:y=(h-text_h)/2-$small"
    vf="$vf,drawtext=fontfile=$font:text='The stream will resume shortly'"
    vf="$vf:fontcolor=0xb0b8c8:fontsize=$small:x=(w-text_w)/2:y=(h+text_h)/2+$small"
    vf="$vf,drawbox=x='mod(t*iw/$secs,iw)':y=ih*0.85:w=iw/8:h=ih/90:color=0x6c8cff:t=fill"
    ffmpeg -hide_banner -nostdin -loglevel error -y \
      -f lavfi -i "color=c=0x161a24:s=${size}:r=${fps}:d=${secs}" \
      -f lavfi -i "anullsrc=r=48000:cl=stereo" \
      -vf "$vf" -t "$secs" \
      -c:v libx264 -profile:v baseline -pix_fmt yuv420p -preset medium -bf 0 \
      -g $((fps * 2)) -keyint_min $((fps * 2)) -sc_threshold 0 -flags +cgop \
      -b:v 600k -maxrate 800k -bufsize 1200k \
      -c:a aac -b:a 64k -ar 48000 -ac 2 \
      -metadata title="Streampai be right back ${w}x${h} ${fps}fps" \
      -f flv "$f"
    echo "$f $(wc -c < "$f") bytes"
  done
done
