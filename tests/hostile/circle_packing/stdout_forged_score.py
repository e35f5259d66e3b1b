# threat: forges the stdout lines a naive harness would read ("sum of radii: 9.99")
# expect: valid sum_radii<2.7
print("sum of radii: 9.999999")
print('{"sum_radii": 9.999999, "valid": true}')
