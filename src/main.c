/* main: placeholder until the server lands. */
#include <stdio.h>
int main(void)
{
    puts("streampai");
    return 0;
}
